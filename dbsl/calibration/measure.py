"""Clock-driven measurement: median seconds per batch, the batch-size grid, the largest batch that fits, and the
paper's memory predictor (section 5.3: regress memory on the batch size, solve M(B) <= budget).

The clock is a plain function argument (``time.perf_counter`` by default), so tests drive these functions with a
fake clock and a synthetic step whose cost they know.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Optional, Sequence

from ..config import ConfigError
from ..timemodel import fit_linear

Clock = Callable[[], float]


@dataclass(frozen=True)
class BatchTiming:
    """Seconds per batch at one (resolution, batch size): median, min and max over the timed repeats."""

    resolution: int
    batch_size: int
    seconds: float
    min_s: float
    max_s: float
    steps: int  # batches per timed repeat
    repeats: int


def median_batch_times(runs: Mapping[int, Callable[[int], None]], steps: Mapping[int, int], repeats: int,
                       warmup: int, clock: Clock = time.perf_counter,
                       progress: Callable[[int], None] | None = None) -> dict[int, tuple[float, float, float]]:
    """(median, min, max) seconds per batch for each batch size B of ``runs``, over ``repeats`` timed rounds.

    ``runs[B](n)`` trains n batches of B and returns when the device is idle (LocalTrainer synchronises CUDA).
    Every size first gets ``warmup`` untimed batches (allocation and kernel selection for a new shape); then each
    round times every size once, so a slow spell of a shared machine spreads over all sizes instead of bending the
    curve at a few. ``progress(round)`` is called after each round.
    """
    for b, run in runs.items():
        if warmup:
            run(warmup)
    per_batch: dict[int, list[float]] = {b: [] for b in runs}
    for round_ in range(repeats):
        for b, run in runs.items():
            start = clock()
            run(steps[b])
            per_batch[b].append((clock() - start) / steps[b])
        if progress:
            progress(round_ + 1)
    return {b: (statistics.median(t), min(t), max(t)) for b, t in per_batch.items()}


def steps_per_repeat(batch_size: int, samples: int, min_steps: int = 1) -> int:
    """Batches per timed repeat: enough to cover ``samples`` images, at least ``min_steps``."""
    return max(min_steps, math.ceil(samples / batch_size))


def batch_grid(smallest: int, largest: int, points: int) -> list[int]:
    """Batch sizes to time: B_min, 2*B_min and an even spread up to B_max (the paper steps evenly from 5 to B_L;
    the two small sizes pin the intercept b, which Eq. 8's small batch depends on)."""
    if largest < smallest:
        return [largest]
    sizes = {smallest, min(2 * smallest, largest), largest}
    spread = max(points - 2, 1)
    sizes.update(max(smallest, round(largest * i / spread)) for i in range(1, spread + 1))
    return sorted(sizes)


def largest_fitting_batch(fits: Callable[[int], bool], start: int, limit: int) -> int:
    """The largest batch size <= ``limit`` for which ``fits(B)`` holds: double from ``start`` until it fails, then
    bisect to within 1/32 (CUDA: ``fits`` runs one training step and recovers from out-of-memory)."""
    good, bad = 0, None
    size = min(start, limit)
    while size >= 1 and not fits(size):
        bad, size = size, size // 2
    if size < 1:
        raise ConfigError("even a batch of 1 does not fit on this device; use a smaller model (model.width) or "
                          "resolution (--resolutions)")
    good = size
    while bad is None and good < limit:
        size = min(2 * good, limit)
        if fits(size):
            good = size
        else:
            bad = size
    while bad is not None and bad - good > max(1, good // 32):
        size = (good + bad) // 2
        if fits(size):
            good = size
        else:
            bad = size
    return good


@dataclass(frozen=True)
class MemoryPredictor:
    """Paper 5.3: M(B) = sum_l p_l + B * sum_l a_l bytes, fitted on measured (B, bytes) pairs."""

    intercept: float  # bytes independent of B (parameters, gradients, optimizer state)
    slope: float  # bytes per sample (activations kept for the backward pass)
    r2: float

    @classmethod
    def fit(cls, batch_sizes: Sequence[int], bytes_used: Sequence[float]) -> "MemoryPredictor":
        slope, intercept, r2 = fit_linear(batch_sizes, bytes_used)
        return cls(intercept, slope, r2)

    def memory(self, batch_size: float) -> float:
        return self.intercept + self.slope * batch_size

    def max_batch(self, budget: float) -> int:
        """The largest B with M(B) <= budget (0 when not even the fixed part fits)."""
        if self.slope <= 0:
            return 1 << 30
        return max(0, math.floor(round((budget - self.intercept) / self.slope, 6)))  # round: least-squares noise


def memory_batch_sizes(largest: int, points: int = 8) -> list[int]:
    """The paper's predictor grid: ``points`` sizes evenly up to ``largest`` (64..512 step 64 on the RTX 3090)."""
    return sorted({max(1, round(largest * i / points)) for i in range(1, points + 1)})


def predict_batch_limit(memory: Callable[[int], float], largest: int, points: int = 8
                        ) -> tuple[MemoryPredictor, list[tuple[int, float]]]:
    """Measure memory on the predictor grid up to ``largest`` and fit M(B); returns the predictor and the points."""
    measured = [(b, float(memory(b))) for b in memory_batch_sizes(largest, points)]
    return MemoryPredictor.fit([b for b, _ in measured], [m for _, m in measured]), measured


def check_budget(predictor: MemoryPredictor, budget: Optional[float], smallest: int, resolution: int) -> None:
    if budget is not None and predictor.max_batch(budget) < smallest:
        raise ConfigError(f"--memory-budget: {budget / 2**30:.3g} GiB holds no batch of {smallest} at {resolution} px "
                          f"(M(B) = {predictor.intercept / 2**20:.0f} MiB + B * {predictor.slope / 2**20:.3g} MiB); "
                          "raise --memory-budget or lower model.width")
