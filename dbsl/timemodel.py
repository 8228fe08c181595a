"""Time models and the dual-batch solve: the paper's formulas, each in one place.

Notation (paper section 3): d training samples, n workers of which n_S use the small batch B_S and
n_L = n - n_S the large batch B_L; k the extra-time ratio; per-batch time t(B) = a*B + b.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Sequence

import numpy as np

from .config import ConfigError, HardwareConfig


class BudgetError(ConfigError):
    """An impossible batch-size budget (the message names the knob to change)."""


class TimeModel:
    """Seconds per training batch of size ``batch`` at one resolution."""

    def batch_time(self, batch: float) -> float:
        raise NotImplementedError

    def sample_time(self, batch: float) -> float:
        """Seconds per sample at batch size ``batch``: t(B)/B (a + b/B for the linear model)."""
        return self.batch_time(batch) / batch

    def epoch_time(self, batch: int, data: int) -> float:
        """Eq. 2: time of one pass over ``data`` samples, t = t(B) * ceil(d/B)."""
        return self.batch_time(batch) * math.ceil(data / batch)

    def epoch_time_simplified(self, batch: float, data: float) -> float:
        """Eq. 3: t ~= (a + b/B) * d, i.e. per-sample time times the data amount."""
        return self.sample_time(batch) * data

    def mini_epoch_time(self, batch: int, steps: int) -> float:
        """Modelled time of the ``steps`` batches a worker runs in one mini-epoch: t(B) per batch, so with
        steps = ceil(d/B) (``train.steps=ceil``) it is Eq. 2, which costs a partial last batch as a full one."""
        return self.batch_time(batch) * steps


@dataclass(frozen=True)
class LinearTimeModel(TimeModel):
    """Eq. 2's per-batch time t(B) = a*B + b (a: seconds per sample, b: seconds per batch)."""

    a: float
    b: float

    def batch_time(self, batch: float) -> float:
        return self.a * batch + self.b


@dataclass(frozen=True)
class TableTimeModel(TimeModel):
    """Measured per-batch times with monotone (piecewise-linear) interpolation, linear extrapolation at the ends.

    For hardware where the line of Eq. 2 fits badly (e.g. a CPU at width 64, where per-sample cost rises with B).
    """

    batch_sizes: tuple
    batch_times: tuple

    def __post_init__(self):
        if len(self.batch_sizes) < 2 or list(self.batch_sizes) != sorted(set(self.batch_sizes)):
            raise ConfigError(f"hardware.resolutions[].batch_sizes={list(self.batch_sizes)}: need >= 2 increasing sizes")
        if any(t <= 0 for t in self.batch_times) or list(self.batch_times) != sorted(self.batch_times):
            raise ConfigError(f"hardware.resolutions[].batch_times={list(self.batch_times)}: per-batch times must be "
                              "positive and non-decreasing in the batch size (re-run python -m dbsl.calibrate)")

    def batch_time(self, batch: float) -> float:
        x, y = self.batch_sizes, self.batch_times
        if batch <= x[0]:
            slope = (y[1] - y[0]) / (x[1] - x[0])
            return max(y[0] + slope * (batch - x[0]), 1e-12)
        if batch >= x[-1]:
            slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
            return y[-1] + slope * (batch - x[-1])
        return float(np.interp(batch, x, y))


@dataclass(frozen=True)
class HardwareProfile:
    """A time model and the largest batch B_L per resolution."""

    name: str
    models: Dict[int, TimeModel]
    batch_large: Dict[int, int]

    def model(self, resolution: int) -> TimeModel:
        if resolution not in self.models:
            raise ConfigError(f"hardware={self.name} has no time model for resolution {resolution} px "
                              f"(it has {sorted(self.models)}); choose schedule.resolutions among them or calibrate "
                              "this resolution with python -m dbsl.calibrate")
        return self.models[resolution]


def profile_from_config(cfg: HardwareConfig) -> HardwareProfile:
    models, batch_large = {}, {}
    for p in cfg.resolutions:
        if cfg.kind == "linear":
            models[p.resolution] = LinearTimeModel(p.a, p.b)
        else:
            models[p.resolution] = TableTimeModel(tuple(p.batch_sizes), tuple(p.batch_times))
        batch_large[p.resolution] = p.batch_large
    return HardwareProfile(cfg.name, models, batch_large)


ROUNDING: Dict[str, Callable[[float], int]] = {
    "round": round,  # journal code: Python's round (half to even)
    "floor": int,  # COMPSAC code: int() truncation
}


@dataclass(frozen=True)
class DataSplit:
    """Samples per mini-epoch of a large-batch (d_L) and a small-batch (d_S) worker."""

    data_large: int  # d_L
    data_small: int  # d_S (0 when n_S = 0)

    @property
    def ratio(self) -> float:
        """d_S/d_L, the paper's linear model-update factor."""
        return self.data_small / self.data_large if self.data_small else 1.0


def data_split(dataset_size: int, num_workers: int, num_small: int, k: float, rounding: str = "round") -> DataSplit:
    """Eqs. 4-6: d_L = k*d/n and d_S = (d - n_L*d_L)/n_S; with n_S = 0 every worker gets d/n and k has no effect."""
    rnd = ROUNDING[rounding]
    d, n = dataset_size, num_workers
    if num_small == 0:
        return DataSplit(rnd(d / n), 0)
    num_large = n - num_small
    d_large = rnd(k * d / n)
    d_small = rnd((d - num_large * d_large) / num_small)
    if d_small <= 0:
        raise BudgetError(f"dbsl.extra_time_ratio={k}: the {num_large} large-batch workers take d_L={d_large} samples "
                          f"each, leaving none of the {d} for the small-batch workers; lower dbsl.extra_time_ratio or "
                          "raise dbsl.num_small")
    return DataSplit(d_large, d_small)


def small_batch(model: TimeModel, batch_large: int, dataset_size: int, num_workers: int, k: float,
                data_small: int, rounding: str = "round", resolution: int | None = None) -> int:
    """Eq. 8: the small batch B_S whose mini-epoch over d_S samples costs k times the baseline's.

    Balance (Eq. 5): (a + b/B_S)*d_S = k*(a + b/B_L)*d/n. For the linear model this is
    B_S = b / ((a + b/B_L)*d_L/d_S - a) with d_L = k*d/n (computed from the unrounded d_L, as the journal code);
    for a measured table the per-sample time is solved for numerically (bisection: it falls as B grows).
    """
    where = f" at {resolution} px" if resolution is not None else ""
    budget = k * model.sample_time(batch_large) * dataset_size / num_workers  # seconds for one small mini-epoch
    per_sample = budget / data_small  # the per-sample time t(B_S)/B_S that B_S must reach
    if isinstance(model, LinearTimeModel):
        denom = per_sample - model.a
        exact = model.b / denom if denom > 0 else math.inf
    else:
        exact = _solve_decreasing(model.sample_time, per_sample, batch_large)
    b_small = ROUNDING[rounding](exact) if math.isfinite(exact) else 0
    if not math.isfinite(exact) or b_small <= 0:
        raise BudgetError(f"dbsl.extra_time_ratio={k}{where}: no small batch B_S makes d_S={data_small} samples fit in "
                          f"{budget:.4g} s (the per-sample time never falls that low); raise dbsl.extra_time_ratio "
                          "or lower dbsl.num_small")
    if b_small >= batch_large:
        raise BudgetError(f"dbsl.extra_time_ratio={k}{where}: the budget gives B_S={b_small} >= B_L={batch_large}, "
                          "so there is no small batch; raise dbsl.extra_time_ratio (k > 1) or raise dbsl.num_small")
    return b_small


def extra_time_ratio_for(model: TimeModel, batch_small: float, batch_large: int, num_workers: int,
                         num_small: int) -> float:
    """Eq. 8 inverted: the k whose small batch is ``batch_small`` (for tuning B_S/B_L directly).

    Equal mini-epoch times (a + b/B_S)*d_S = (a + b/B_L)*d_L give d_S/d_L = q = t(B_L)/B_L / (t(B_S)/B_S), and the
    split of Eqs. 4-6 (n_S*d_S + n_L*d_L = d, d_L = k*d/n) gives k = n / (n_S*q + n_L).
    """
    if not (0 < batch_small <= batch_large) or not (0 < num_small <= num_workers):
        raise ConfigError(f"B_S={batch_small} must lie in (0, B_L={batch_large}] and n_S={num_small} in "
                          f"1..n={num_workers}")
    q = model.sample_time(batch_large) / model.sample_time(batch_small)
    return num_workers / (num_small * q + num_workers - num_small)


def _solve_decreasing(func: Callable[[float], float], target: float, upper: float) -> float:
    """Smallest-error x in [1e-3, upper] with func(x) = target for a function that falls as x grows."""
    lo, hi = 1e-3, float(upper)
    if func(hi) > target:  # even B_L is too slow per sample
        return float(upper)
    if func(lo) <= target:
        return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if func(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def update_factor(split: DataSplit, kind: str) -> float:
    """Section 3.4: a small-batch worker's model-update factor f (large workers use f = 1)."""
    if kind == "linear":
        return split.ratio
    if kind == "sqrt":
        return math.sqrt(split.ratio)
    return 1.0


def fit_linear(batch_sizes: Sequence[float], batch_times: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares fit of t(B) = a*B + b (the authors used sklearn LinearRegression); returns (a, b, R^2)."""
    x, y = np.asarray(batch_sizes, float), np.asarray(batch_times, float)
    a, b = np.polyfit(x, y, 1)
    resid = y - (a * x + b)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / total if total > 0 else 1.0
    return float(a), float(b), r2
