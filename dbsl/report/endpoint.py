"""The accuracy endpoint a comparison is judged on, per run, in per cent: best top-1 (the paper's Tables 8/10, and
this report's default without a pre-registration), final top-1, or the mean of the last m evaluations."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .collect import RunSet, metric_frame


@dataclass
class Endpoint:
    key: str  # column stem: best_top1, final_top1, last4_top1
    label: str  # in table headers: "best top-1"
    text: str  # in sentences
    values: pd.Series  # per run_dir, per cent (NaN where it cannot be computed)


def endpoint(runset: RunSet, spec: str = "best_top1") -> Endpoint:
    """``spec``: best_top1, final_top1 or last_mean:m (a pre-registration's endpoint)."""
    runs = runset.runs[runset.runs["included"]].set_index("run_dir")
    if spec == "best_top1":
        return Endpoint("best_top1", "best top-1", "best test top-1 over all evaluations", runs["best_top1_pct"])
    if spec == "final_top1":
        return Endpoint("final_top1", "final top-1", "final test top-1 (the last commit's evaluation)",
                        runs["final_top1_pct"])
    m = int(spec.split(":")[1])
    values = pd.Series({run_dir: last_mean(run_dir, m) for run_dir in runs.index}, dtype=float)
    return Endpoint(f"last{m}_top1", f"mean top-1 of the last {m} evaluations",
                    f"mean test top-1 of the last {m} evaluations", values)


def last_mean(run_dir: str, m: int) -> float:
    """The mean test top-1 (per cent) of the last ``m`` evaluated commits; NaN with fewer than m evaluations."""
    metrics = metric_frame(run_dir)
    if metrics.empty or "test_top1" not in metrics:
        return math.nan
    evaluated = metrics.dropna(subset=["test_top1"]).sort_values("commit")["test_top1"]
    return float(evaluated.iloc[-m:].mean() * 100.0) if len(evaluated) >= m else math.nan
