"""The statistics of a paired comparison over seeds: one place for every formula the verdicts use.

Runs with the same seed share the initial model and the data subset, so a scheme is compared with its baseline seed by
seed: d_i = ours_i - base_i for the n seeds both completed.

* Interval and test of a change (superiority, two-sided): Student's one-sample t on the d_i,
  t = mean(d) / (s_d / sqrt(n)), n - 1 degrees of freedom; the (1 - alpha) interval is
  mean(d) +- t_{1-alpha/2} s_d / sqrt(n) (scipy.stats.ttest_1samp).
* Non-inferiority with margin m: H0 mean(d) <= -m against mean(d) > -m, one-sided at alpha, i.e. the lower end of the
  (1 - 2 alpha) two-sided interval lies above -m.
* Multiplicity over the primary contrasts (p_1..p_m): Bonferroni p'_i = min(1, m p_i); Holm (1979), step-down: with the
  p-values sorted ascending p_(1) <= ... <= p_(m), p'_(j) = min(1, max_{i<=j} (m - i + 1) p_(i)).
* Power of the paired t-test at effect delta: the non-central t with n - 1 degrees of freedom and non-centrality
  delta sqrt(n) / s_d; the detectable effect is the delta at which that power reaches the target (80 %).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import optimize, stats

POWER = 0.8  # the power at which the detectable effect is stated


@dataclass
class Paired:
    """A paired comparison: the per-seed differences and what they say."""

    n: int
    mean: float
    sd: float  # sample s.d. of the differences (ddof 1); NaN for one pair
    low: float  # the two-sided interval at ``confidence``
    high: float
    p: float  # the p-value of the contrast's own test (two-sided superiority, or one-sided non-inferiority)
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def paired(diffs: Sequence[float], confidence: float = 0.95, margin: float | None = None) -> Paired:
    """Mean, s.d., two-sided t interval and p-value of the per-seed differences. ``margin`` (same unit, > 0): the
    p-value is the one-sided non-inferiority test of mean > -margin; without it, the two-sided test of mean != 0."""
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n < 2:
        mean = float(d.mean()) if n else math.nan
        return Paired(n, mean, math.nan, math.nan, math.nan, math.nan, confidence)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if np.ptp(d) == 0.0:  # the same difference in every seed: exact, no test
        mean, sd = float(d[0]), 0.0
        p = (0.0 if mean > -margin else 1.0) if margin is not None else (0.0 if mean != 0.0 else 1.0)
        return Paired(n, mean, 0.0, mean, mean, p, confidence)
    ci = stats.ttest_1samp(d, 0.0).confidence_interval(confidence)
    if margin is None:
        p = float(stats.ttest_1samp(d, 0.0).pvalue)
    else:
        p = float(stats.ttest_1samp(d, -margin, alternative="greater").pvalue)
    return Paired(n, mean, sd, float(ci.low), float(ci.high), p, confidence)


def adjust(pvalues: Sequence[float], method: str) -> list[float]:
    """Adjusted p-values over one family of tests: ``holm``, ``bonferroni`` or ``none``; NaN (an untested contrast)
    stays NaN and does not count in the family."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    if method == "none":
        out[tested] = p[tested]
    elif method == "bonferroni":
        out[tested] = np.minimum(1.0, m * p[tested])
    elif method == "holm":
        order = tested[np.argsort(p[tested], kind="stable")]
        running = 0.0
        for i, idx in enumerate(order):
            running = max(running, (m - i) * p[idx])
            out[idx] = min(1.0, running)
    else:
        raise ValueError(f"unknown multiplicity correction {method!r} (holm, bonferroni or none)")
    return out.tolist()


def power(effect: float, sd: float, n: int, alpha: float, sides: int = 2) -> float:
    """Power of the paired t-test (level ``alpha``, ``sides`` 2 or 1) when the true mean difference is ``effect``."""
    if n < 2 or not sd > 0:
        return math.nan
    df, nc = n - 1, effect * math.sqrt(n) / sd
    crit = stats.t.ppf(1.0 - alpha / sides, df)
    upper = stats.nct.sf(crit, df, nc)
    lower = stats.nct.cdf(-crit, df, nc) if sides == 2 else 0.0
    # scipy's far tail can come out NaN where it is below 1e-15; it is negligible for effect >= 0
    return float(upper + (lower if math.isfinite(lower) else 0.0))


def detectable_effect(sd: float, n: int, alpha: float, sides: int = 2, target: float = POWER) -> float:
    """The smallest true mean difference the paired t-test detects with power ``target`` (same unit as ``sd``)."""
    if n < 2 or not sd > 0:
        return math.nan
    high = sd
    while power(high, sd, n, alpha, sides) < target:  # bracket the root (power rises with the effect)
        high *= 2.0
    return float(optimize.brentq(lambda e: power(e, sd, n, alpha, sides) - target, 0.0, high))
