"""The paper's Table 4 check: time whole mini-epochs at (B, d) pairs of the current plan and compare them with the
time model's prediction, t(B) * steps (Eq. 2 with the plan's step count, as the simulated executor models it).

rel_error = (predicted - measured) / measured: positive when the model overestimates. When the profile keeps the
measured table, the rows also give the paper's line (line_predicted_s, line_rel_error) for comparison.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

from ..plan import Plan
from ..timemodel import HardwareProfile
from .measure import Clock


@dataclass(frozen=True)
class MiniEpoch:
    """One (B, d) pair of the plan: a worker role's batch size and mini-epoch at one resolution."""

    role: str  # large | small
    resolution: int
    batch_size: int
    steps: int
    plan_data: int  # d_L or d_S of the plan


def plan_mini_epochs(plan: Plan) -> List[MiniEpoch]:
    """The distinct (role, resolution, B, steps) of the plan's phases, in phase order."""
    seen: dict = {}
    for p in plan.phases:
        if plan.num_small < plan.num_workers:
            seen.setdefault(("large", p.resolution, p.batch_large, p.steps_large), plan.data_large)
        if plan.num_small:
            seen.setdefault(("small", p.resolution, p.batch_small, p.steps_small), plan.data_small)
    return [MiniEpoch(role, res, b, steps, data) for (role, res, b, steps), data in seen.items()]


def validate_mini_epochs(pairs: List[MiniEpoch], profile: HardwareProfile,
                         train_steps: Callable[[int, int, int], None], repeats: int, max_steps: int = 0,
                         warmup: int = 1, clock: Clock = time.perf_counter,
                         report: Callable[[str], None] = print,
                         line: Optional[HardwareProfile] = None) -> List[dict]:
    """Table-4 rows: for each pair, the median of ``repeats`` timed mini-epochs against the model's prediction.

    ``max_steps`` > 0 shortens each mini-epoch to at most that many batches (--quick); ``data`` then counts the
    samples actually trained.
    """
    rows = []
    for pair in pairs:
        steps = min(pair.steps, max_steps) if max_steps else pair.steps
        if warmup:
            train_steps(pair.resolution, pair.batch_size, warmup)
        seconds = []
        for _ in range(repeats):
            start = clock()
            train_steps(pair.resolution, pair.batch_size, steps)
            seconds.append(clock() - start)
        measured = statistics.median(seconds)
        predicted = profile.model(pair.resolution).mini_epoch_time(pair.batch_size, steps)
        row = {"resolution": pair.resolution, "batch_size": pair.batch_size, "data": steps * pair.batch_size,
               "steps": steps, "predicted_s": predicted, "measured_s": measured,
               "rel_error": (predicted - measured) / measured, "role": pair.role, "plan_data": pair.plan_data,
               "repeats": repeats}
        if line is not None:
            row["line_predicted_s"] = line.model(pair.resolution).mini_epoch_time(pair.batch_size, steps)
            row["line_rel_error"] = (row["line_predicted_s"] - measured) / measured
        report(f"  mini-epoch {pair.role:5s} {pair.resolution:3d} px B={pair.batch_size:4d} d={row['data']:6d}: "
               f"measured {measured:8.3f} s, predicted {predicted:8.3f} s, error {row['rel_error']:+.1%}"
               + (f" (line: {row['line_rel_error']:+.1%})" if line is not None else ""))
        rows.append(row)
    return rows
