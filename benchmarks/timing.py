"""Side-by-side timing: warm-up, interleaved rounds, medians, and a distribution-free interval of a median ratio.

Every benchmark compares two or more *sides* (callables doing one unit of work) measured in the same run. After
``warmup`` untimed calls of each side, each round times every side once, in an order that alternates between
rounds (A B, B A, A B, ...), so a slow drift of the machine's speed hits all sides alike. Each call is timed on two
clocks: wall seconds (``time.perf_counter``) and this process's CPU seconds (``time.process_time``, all its
threads). For a side running one thread, other processes sharing the cores delay a call in wall time, but add to
its CPU seconds only through the caches and memory they share (less, and alike for the interleaved sides of a
ratio). What a side returns is kept, for sides
whose relevant time is measured inside (e.g. a run summary's ``wall_time - eval_time``).

A comparison is summarised by the median of its per-round ratios (the two calls of a round ran next to each other)
and a 95 % interval for that median from order statistics (:func:`median_interval`, no assumption on the noise's
distribution). ``interleave(..., enough=...)`` stops adding rounds once the interval has decided a target.
"""
from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

CLOCKS = ("wall", "cpu")


@dataclass
class Samples:
    """What one side gave over the timed rounds: wall and CPU seconds per call and the value each call returned."""

    seconds: List[float] = field(default_factory=list)
    values: List[Any] = field(default_factory=list)
    cpu: List[float] = field(default_factory=list)

    def times(self, clock: str = "wall") -> List[float]:
        if clock not in CLOCKS:
            raise ValueError(f"clock={clock!r}: must be one of {', '.join(CLOCKS)}")
        return self.seconds if clock == "wall" else self.cpu

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def median_of(self, clock: str = "wall") -> float:
        return statistics.median(self.times(clock))

    def rate(self, work: float, clock: str = "wall") -> float:
        """Units of ``work`` per second at the median time (e.g. images/s)."""
        return work / self.median_of(clock)


def interleave(sides: Mapping[Any, Callable[[], Any]], repeats: int, warmup: int = 1,
               clock: Callable[[], float] = time.perf_counter, cpu_clock: Callable[[], float] = time.process_time,
               min_repeats: Optional[int] = None,
               enough: Optional[Callable[[Dict[Any, Samples]], bool]] = None) -> Dict[Any, Samples]:
    """Time each side up to ``repeats`` times, interleaved (orders alternate: AB BA AB ...), after ``warmup`` calls
    each; the value each timed call returns is kept in ``Samples.values``. With ``enough``, stop after any round
    from ``min_repeats`` on at which ``enough(samples so far)`` is true (e.g. an interval has decided a target)."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: need at least one timed round")
    order = list(sides)
    for _ in range(warmup):
        for name in order:
            sides[name]()
    gc.collect()
    out = {name: Samples() for name in order}
    for round_ in range(repeats):
        for name in (order if round_ % 2 == 0 else order[::-1]):
            start, cpu_start = clock(), cpu_clock()
            value = sides[name]()
            out[name].seconds.append(clock() - start)
            out[name].cpu.append(cpu_clock() - cpu_start)
            out[name].values.append(value)
        if enough is not None and round_ + 1 >= (min_repeats or repeats) and enough(out):
            break
    return out


def ratio(numerator: Samples, denominator: Samples, clock: str = "wall") -> float:
    """median(numerator seconds) / median(denominator seconds)."""
    return numerator.median_of(clock) / denominator.median_of(clock)


def round_ratios(numerator: Samples, denominator: Samples, clock: str = "wall") -> List[float]:
    """The ratio within each round (the two calls ran next to each other): its spread shows the noise."""
    return [a / b for a, b in zip(numerator.times(clock), denominator.times(clock))]


def spread(values: List[float]) -> Optional[List[float]]:
    """[min, max] of ``values`` (rounded), or None when empty."""
    values = [v for v in values if math.isfinite(v)]
    return [round(min(values), 4), round(max(values), 4)] if values else None


def median_rank(n: int, confidence: float = 0.95) -> Optional[int]:
    """The largest rank l such that [x_(l), x_(n+1-l)] (order statistics, 1-based) covers the median of any
    continuous distribution with probability >= ``confidence``: the coverage is 1 - 2 P(K <= l-1) for K ~
    Binomial(n, 1/2). None when even [min, max] covers too little (n < 6 at 95 %)."""
    best = None
    for rank in range(1, n // 2 + 1):
        tail = sum(math.comb(n, k) for k in range(rank)) / 2 ** n
        if 1 - 2 * tail < confidence:
            break
        best = rank
    return best


def median_interval(values: Sequence[float], confidence: float = 0.95) -> Optional[Tuple[float, float]]:
    """A distribution-free ``confidence`` interval for the median of ``values`` (order statistics, see
    :func:`median_rank`), or None with too few values."""
    x = sorted(v for v in values if math.isfinite(v))
    rank = median_rank(len(x), confidence)
    return None if rank is None else (x[rank - 1], x[len(x) - rank])


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def decided(interval: Optional[Tuple[float, float]], target: float) -> bool:
    """Whether ``interval`` lies wholly on one side of ``target``."""
    return interval is not None and (interval[0] > target or interval[1] < target)


@dataclass
class Comparison:
    """The per-round ratios of one comparison, summarised: median, 95 % interval of the median, clock, rounds."""

    ratios: List[float]
    clock: str

    @property
    def median(self) -> float:
        return statistics.median(self.ratios)

    @property
    def interval(self) -> Optional[Tuple[float, float]]:
        return median_interval(self.ratios)

    def headline(self, label: str, target: Optional[float], higher_is_better: bool = True, **extra: Any) -> dict:
        """A benchmark headline (see common.result) carrying this comparison's interval, clock and rounds."""
        interval = self.interval
        return {"label": label, "value": self.median, "target": target, "higher_is_better": higher_is_better,
                "interval": list(interval) if interval else None, "rounds": len(self.ratios), "clock": self.clock,
                "range": spread(self.ratios), **extra}


def compare(numerator: Samples, denominator: Samples, clock: str, invert: bool = False) -> Comparison:
    """Per-round ratios numerator / denominator on ``clock`` (``invert``: denominator / numerator, i.e. a speed-up
    when the sides are times)."""
    ratios = round_ratios(numerator, denominator, clock)
    return Comparison([1 / r for r in ratios] if invert else ratios, clock)


def one_thread_clock() -> str:
    """The clock a headline uses: CPU seconds when torch runs one thread (far less inflated by other processes), wall
    seconds otherwise (several threads' CPU seconds add up, and include their spin-waiting)."""
    import torch

    return "cpu" if torch.get_num_threads() == 1 else "wall"
