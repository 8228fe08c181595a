"""The paper's claims set against the runs: per experiment and scheme, the change against the baseline over seeds
with a 95 % confidence interval, and whether the runs show the claimed effect, no resolvable effect, or the opposite.

The claims (paper v2, Section 5 and Table 8; see ../shared/paper.md):

* DBSL: with n_S small-batch workers, test accuracy goes up while an epoch costs at most k times the baseline's.
* CPL: training time goes down without an accuracy loss (CIFAR-100: -10.1 % time, 68.0 % top-1 either way).
* hybrid: both at once, accuracy up and time down.

Runs with the same seed share the initial model and the data subset, so each scheme is compared with its baseline
seed by seed: the change is the mean of the per-seed differences and its interval the paired Student-t interval
(Welch's interval when fewer than two seeds pair up). An effect counts as shown when the whole interval lies on the
claimed side of zero, as the opposite when it lies on the other side, and as not resolved otherwise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .collect import RunSet
from .paper import comparison
from .render import Table, num
from .tables import slug

CONFIDENCE = 0.95
# scheme -> (accuracy claim, time claim); "higher"/"lower" are directions, "not lower" tolerates no change,
# "within k" is the time budget of Eq. 8
CLAIMS = {"dbsl": ("higher", "within k"), "cpl": ("not lower", "lower"), "hybrid": ("higher", "lower")}
CLAIM_TEXT = {
    "dbsl": "dual batches raise accuracy at most k times the baseline's time",
    "cpl": "cyclic progressive learning cuts training time without losing accuracy",
    "hybrid": "the hybrid raises accuracy and cuts training time",
}
SLACK_PCT = 0.5  # "within k": the modelled time may exceed (k-1) by this many per cent (B_S is rounded, Eq. 8)


@dataclass
class Change:
    """The change of one metric against the baseline over seeds."""

    mean: float
    low: float
    high: float
    pairs: int  # seeds compared pairwise (0: unpaired, Welch)

    @property
    def resolved(self) -> bool:
        return not math.isnan(self.low)

    def direction(self) -> str:
        if not self.resolved:
            return "one seed: no interval"
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return "no resolved change"


def paired_change(ours: pd.Series, base: pd.Series, relative: bool = False) -> Change:
    """Change of ``ours`` against ``base`` (both indexed by seed): differences (or ratios - 1, in per cent) seed by
    seed with a paired t interval; Welch's interval on the two samples when fewer than two seeds pair up."""
    common = ours.index.intersection(base.index)
    if len(common) >= 2:
        diffs = ((ours[common] / base[common] - 1.0) * 100.0) if relative else (ours[common] - base[common])
        low, high = _t_interval(diffs.to_numpy(float))
        return Change(float(diffs.mean()), low, high, len(common))
    a, b = ours.to_numpy(float), base.to_numpy(float)
    if relative:  # both as per cent of the baseline's mean
        a, b = (a / b.mean() - 1.0) * 100.0, (b / b.mean() - 1.0) * 100.0
    mean = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Change(mean, math.nan, math.nan, 0)
    if np.ptp(a) == 0.0 and np.ptp(b) == 0.0:  # both constant: the difference is exact
        return Change(mean, mean, mean, 0)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(CONFIDENCE)
    return Change(mean, float(ci.low), float(ci.high), 0)


def _t_interval(values: np.ndarray) -> tuple[float, float]:
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    if np.ptp(values) == 0.0:  # the same change in every seed (e.g. the modelled time): exact
        return mean, mean
    half = stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return mean - half, mean + half


def accuracy_verdict(claim: str, change: Change) -> str:
    found = change.direction()
    if not change.resolved:
        return "not tested (one seed)"
    if claim == "higher":
        return {"higher": "shown", "lower": "opposite"}.get(found, "not shown (no resolved change)")
    # "not lower": no loss is what is claimed; an interval that holds zero does not contradict it, nor show it
    return {"lower": "opposite (accuracy lost)", "higher": "shown (higher)"}.get(
        found, f"not contradicted (no resolved change; the interval allows {change.low:+.2f})")


def time_verdict(claim: str, change: Change, k: float) -> str:
    if claim == "within k":
        budget = (k - 1.0) * 100.0
        return "shown" if change.mean <= budget + SLACK_PCT else f"opposite (over the {budget:+.1f} % budget)"
    found = change.direction()
    if not change.resolved:
        found = "lower" if change.mean < 0 else "higher"
    return {"lower": "shown", "higher": "opposite"}.get(found, "not shown (no resolved change)")


def claim_rows(runset: RunSet, groups: pd.DataFrame) -> pd.DataFrame:
    """One row per scheme group that has a baseline: the paired changes of best top-1 and modelled time, the
    verdicts, and the paper's change for the matching CIFAR-100 row (where there is one)."""
    runs = runset.runs[runset.runs["included"]].set_index("run_dir")
    paper = comparison(groups)
    paper = paper[paper["table"].isin([8, 10])] if "group" in paper else pd.DataFrame(columns=["group"])
    rows = []
    for _, g in groups.iterrows():
        if g["scheme"] not in CLAIMS or pd.isna(g["baseline_group"]) or g["group"] == g["baseline_group"]:
            continue
        base = groups.set_index("group").loc[g["baseline_group"]]
        ours_runs, base_runs = runs.loc[g["run_dirs"]], runs.loc[base["run_dirs"]]
        by_seed = lambda frame, col: frame.set_index("seed")[col]  # noqa: E731
        top1 = paired_change(by_seed(ours_runs, "best_top1_pct"), by_seed(base_runs, "best_top1_pct"))
        clock = "wall" if g["executor"] == "distributed" else "modelled"  # the distributed run's time is real
        time = paired_change(by_seed(ours_runs, f"{clock}_time_s"), by_seed(base_runs, f"{clock}_time_s"),
                             relative=True)
        acc_claim, time_claim = CLAIMS[g["scheme"]]
        k = float(g["extra_time_ratio"]) if g["num_small"] else 1.0
        published = paper[paper["group"] == g["group"]][:1]
        rows.append({
            "experiment": g["experiment"], "label": g["label"], "scheme": g["scheme"], "num_small": g["num_small"],
            "extra_time_ratio": k, "seeds_paired": top1.pairs, "runs": g["runs"],
            "accuracy_claim": acc_claim, "delta_best_top1_pp": top1.mean, "delta_best_top1_low": top1.low,
            "delta_best_top1_high": top1.high, "accuracy_verdict": accuracy_verdict(acc_claim, top1),
            "time_claim": time_claim, "clock": clock, "delta_time_pct": time.mean, "delta_time_low": time.low,
            "delta_time_high": time.high, "time_verdict": time_verdict(time_claim, time, k),
            "paper_delta_top1_pp": published["paper_delta_top1_pp"].iloc[0] if len(published) else math.nan,
            "paper_delta_time_pct": published["paper_delta_time_pct"].iloc[0] if len(published) else math.nan,
            "paper_table": published["table"].iloc[0] if len(published) else math.nan,
        })
    return pd.DataFrame(rows)


def _interval(mean, low, high, digits: int, unit: str) -> str:
    if math.isnan(low):
        return f"{mean:+.{digits}f}{unit}"
    if low == high:
        return f"{mean:+.{digits}f}{unit} (same in every seed)"
    return f"{mean:+.{digits}f}{unit} [{low:+.{digits}f}, {high:+.{digits}f}]"


def claims_tables(runset: RunSet, groups: pd.DataFrame) -> list[Table]:
    """Per experiment, the claims table; its notes state each claim and what the runs show, in words."""
    data = claim_rows(runset, groups) if not groups.empty else pd.DataFrame()
    tables = []
    for experiment, part in (data.groupby("experiment", sort=True) if not data.empty else []):
        part = part.reset_index(drop=True)
        display = pd.DataFrame({
            "scheme": part["scheme"], "n_S": part["num_small"],
            "k": [f"{k:g}" if n else "-" for k, n in zip(part["extra_time_ratio"], part["num_small"])],
            "seeds": part["runs"],
            "Δ best top-1 (pp), 95 % CI": [_interval(m, lo, hi, 2, "") for m, lo, hi in
                                           zip(part["delta_best_top1_pp"], part["delta_best_top1_low"],
                                               part["delta_best_top1_high"])],
            "accuracy claim": part["accuracy_claim"], "accuracy: this run": part["accuracy_verdict"],
            "Δ time (%)": [_interval(m, lo, hi, 1, "") for m, lo, hi in
                           zip(part["delta_time_pct"], part["delta_time_low"], part["delta_time_high"])],
            "clock": part["clock"],
            "time claim": part["time_claim"], "time: this run": part["time_verdict"],
            "paper Δ top-1 (pp)": part["paper_delta_top1_pp"].map(lambda v: num(v, 1, signed=True)),
            "paper Δ time (%)": part["paper_delta_time_pct"].map(lambda v: num(v, 1, signed=True)),
        })
        notes = [f"Changes against the baseline (no small batches, no CPL), seed by seed, with a "
                 f"{CONFIDENCE * 100:.0f} % paired Student-t interval over seeds. Shown: the interval lies on the "
                 "claimed side of zero; opposite: on the other side; not shown: the interval holds zero, so these "
                 "seeds cannot tell the effect from seed-to-seed noise; not contradicted: no loss is claimed and none "
                 "is resolved. 'within k': the time exceeds the baseline's by at most (k-1) "
                 f"(+{SLACK_PCT} % for the rounding of B_S). Clock: the time model's virtual clock (modelled) on the "
                 "simulated executor, the measured training time (wall) on the distributed one. Paper columns: the "
                 "matching CIFAR-100/ImageNet row of Table 8/10 against DBL n_S=0 (best top-1 over all commits, "
                 "server wall-clock time)."]
        notes += [_summary(scheme, rows) for scheme, rows in part.groupby("scheme", sort=False)]
        tables.append(Table(f"claims_{slug(experiment)}", f"The paper's claims against these runs: {experiment}",
                            part, display, notes))
    return tables


def _clock(rows: pd.DataFrame) -> str:
    clocks = sorted(set(rows["clock"]))
    return {"modelled": "modelled", "wall": "wall-clock"}.get("/".join(clocks), "modelled/wall-clock")


def _summary(scheme: str, rows: pd.DataFrame) -> str:
    """One plain sentence per scheme: the claim, the paper's numbers, what these runs show."""
    def span(column, digits, unit):
        values = rows[column].dropna()
        if values.empty:
            return "n/a"
        lo, hi = values.min(), values.max()
        return f"{lo:+.{digits}f}{unit}" if math.isclose(lo, hi) else f"{lo:+.{digits}f} to {hi:+.{digits}f}{unit}"

    n_s = ", ".join(str(int(n)) for n in rows["num_small"])
    paper = (f"The paper (Table {int(rows['paper_table'].dropna().iloc[0])}, same n_S) reports "
             f"{span('paper_delta_top1_pp', 1, ' pp')} top-1 and {span('paper_delta_time_pct', 1, ' %')} time. "
             if rows["paper_table"].notna().any() else "")
    acc = rows["accuracy_verdict"].str.split(" [(]").str[0].value_counts()
    tim = rows["time_verdict"].str.split(" [(]").str[0].value_counts()
    tally = lambda counts: ", ".join(f"{v} of {len(rows)} {k}" for k, v in counts.items())  # noqa: E731
    return (f"**{scheme}** (n_S = {n_s}). Claim: {CLAIM_TEXT[scheme]}. {paper}These runs: "
            f"{span('delta_best_top1_pp', 2, ' pp')} best top-1 (accuracy claim: {tally(acc)}) and "
            f"{span('delta_time_pct', 1, ' %')} {_clock(rows)} time (time claim: {tally(tim)}).")

