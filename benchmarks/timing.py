"""Side-by-side timing: warm-up, repeats, medians, with the sides interleaved so that machine drift cancels.

Every benchmark compares two or more *sides* (callables doing one unit of work) measured in the same run. After
``warmup`` untimed calls of each side, each round times every side once, in an order that alternates between
rounds (A B, B A, A B, ...), so a slow drift of the machine's speed hits all sides alike. What a side returns is
kept, for sides whose relevant time is measured inside (e.g. a run summary's ``wall_time - eval_time``).
"""
from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional


@dataclass
class Samples:
    """What one side gave over the timed rounds: wall seconds per call and the value each call returned."""

    seconds: List[float] = field(default_factory=list)
    values: List[Any] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def rate(self, work: float) -> float:
        """Units of ``work`` per second at the median time (e.g. images/s)."""
        return work / self.median


def interleave(sides: Mapping[str, Callable[[], Any]], repeats: int, warmup: int = 1,
               clock: Callable[[], float] = time.perf_counter) -> Dict[str, Samples]:
    """Time each side ``repeats`` times, interleaved (orders alternate: AB BA AB ...), after ``warmup`` calls each;
    the value each timed call returns is kept in ``Samples.values``."""
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
            start = clock()
            value = sides[name]()
            out[name].seconds.append(clock() - start)
            out[name].values.append(value)
    return out


def ratio(numerator: Samples, denominator: Samples) -> float:
    """median(numerator seconds) / median(denominator seconds)."""
    return numerator.median / denominator.median


def round_ratios(numerator: Samples, denominator: Samples) -> List[float]:
    """The ratio within each round (the two calls ran next to each other): its spread shows the noise."""
    return [a / b for a, b in zip(numerator.seconds, denominator.seconds)]


def spread(values: List[float]) -> Optional[List[float]]:
    """[min, max] of ``values`` (rounded), or None when empty."""
    values = [v for v in values if math.isfinite(v)]
    return [round(min(values), 4), round(max(values), 4)] if values else None
