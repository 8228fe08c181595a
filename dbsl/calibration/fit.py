"""Fit the paper's per-batch line t(B) = a*B + b (Eq. 2) per resolution, judge it, and keep the measured table
where the line fits badly (on a CPU the per-sample cost can rise with B, which gives a negative intercept)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..config import ConfigError
from ..timemodel import LinearTimeModel, TableTimeModel, TimeModel, fit_linear
from .measure import BatchTiming, MemoryPredictor

MAX_RESIDUAL = 0.10  # the line may miss no measured per-batch time by more than 10 %, and needs a > 0, b >= 0
# (a negative intercept means the per-sample cost rises with B). R^2 is reported, not judged: where the times vary
# little (a tiny model, all per-batch overhead) it is low although the line predicts within a few per cent.


def monotone(values: Sequence[float]) -> list[float]:
    """The closest non-decreasing sequence in least squares (pool adjacent violators): measured per-batch times
    with timing noise, made usable by the table model, which needs times that never fall as B grows."""
    blocks: list[list[float]] = []  # [mean, count]
    for v in values:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, c2), (m1, c1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2])
    return [m for m, c in blocks for _ in range(int(c))]


@dataclass(frozen=True)
class ResolutionFit:
    """One resolution's measurements, its fitted line and its largest batch B_L."""

    resolution: int
    timings: tuple[BatchTiming, ...]
    a: float  # seconds per sample
    b: float  # seconds per batch
    r2: float
    worst_residual: float  # max |line - measured| / measured over the timed batch sizes
    batch_large: int  # B_L written to the profile
    memory: Optional[MemoryPredictor] = None
    memory_points: tuple = ()  # (B, bytes) the predictor was fitted on
    memory_budget: Optional[float] = None  # bytes
    predicted_max_batch: Optional[int] = None  # from the memory predictor and the budget
    probed_max_batch: Optional[int] = None  # CUDA: found by probing for out-of-memory

    @property
    def batch_sizes(self) -> list[int]:
        return [t.batch_size for t in self.timings]

    @property
    def seconds(self) -> list[float]:
        return [t.seconds for t in self.timings]

    @property
    def table_times(self) -> list[float]:
        return monotone(self.seconds)

    @property
    def line_problems(self) -> list[str]:
        """Why the line is not good enough here (empty: it is)."""
        problems = []
        if self.a <= 0:
            problems.append(f"slope a={self.a:.3g} <= 0")
        if self.b < 0:
            problems.append(f"negative intercept b={self.b:.3g} (per-sample cost rises with B)")
        if self.worst_residual > MAX_RESIDUAL:
            problems.append(f"worst residual {self.worst_residual:.1%} > {MAX_RESIDUAL:.0%}")
        return problems

    def model(self, kind: str) -> TimeModel:
        if kind == "linear":
            return LinearTimeModel(self.a, self.b)
        return TableTimeModel(tuple(self.batch_sizes), tuple(self.table_times))


def fit_resolution(resolution: int, timings: Sequence[BatchTiming], batch_large: int, **memory) -> ResolutionFit:
    """Least-squares line through the median per-batch times (timemodel.fit_linear) and its quality."""
    if len(timings) < 3:
        raise ConfigError(f"--batch-sizes: {resolution} px has {len(timings)} timed batch sizes; a line and its "
                          "quality need at least 3 (give more sizes or a larger --max-batch)")
    x = np.array([t.batch_size for t in timings], float)
    y = np.array([t.seconds for t in timings], float)
    a, b, r2 = fit_linear(x, y)
    worst = float(np.max(np.abs(a * x + b - y) / y))
    return ResolutionFit(resolution, tuple(timings), a, b, r2, worst, batch_large, **memory)


def choose_kind(fits: Sequence[ResolutionFit], requested: str = "auto") -> tuple[str, list[str]]:
    """The profile's kind (one for all resolutions) and the reasons when the line was rejected.

    auto: linear where every resolution's line fits well, else the measured table. Asking for linear where the
    line has a negative part fails, since validate() and Eq. 8 need a > 0 and b >= 0.
    """
    reasons = [f"{f.resolution} px: {'; '.join(f.line_problems)}" for f in fits if f.line_problems]
    if requested == "table":
        return "table", reasons
    if requested == "linear":
        bad = [f for f in fits if f.a <= 0 or f.b < 0]
        if bad:
            raise ConfigError(f"--kind linear: the line at {bad[0].resolution} px has a={bad[0].a:.3g}, "
                              f"b={bad[0].b:.3g}; the linear model needs a > 0 and b >= 0, use --kind table or auto")
        return "linear", reasons
    return ("table" if reasons else "linear"), reasons
