"""The accuracy endpoint a comparison is judged on, per run, in per cent: best top-1 (the paper's Tables 8/10, and
this report's default without a pre-registration), final top-1, the mean of the last m evaluations, or the mean over
a final window of every commit of the last E epochs (``final_window:E``, runs with ``train.eval_final_epochs >= E``).

Which worker's merge an evaluation follows is part of what it measures: a tested model right after a small-batch
worker's merge is not the model a user gets at a neutral time. So every endpoint also says whose merges it tested
(:func:`composition`), and :func:`balance_problem` flags an endpoint whose evaluations follow small- and large-batch
workers' merges in other shares than the run's workers (a fixed push order and a test every m commits test the
same worker every time; which one depends on the scheme).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from .collect import RunSet, metric_frame


@dataclass
class Endpoint:
    key: str  # column stem: best_top1, final_top1, last4_top1, window4_top1
    label: str  # in table headers: "best top-1"
    text: str  # in sentences
    values: pd.Series  # per run_dir, per cent (NaN where it cannot be computed)
    # per run_dir: the evaluated rows behind the value (commit, worker, small, test_top1); empty for best/final
    behind: dict = field(default_factory=dict)


def endpoint(runset: RunSet, spec: str = "best_top1") -> Endpoint:
    """``spec``: best_top1, final_top1, last_mean:m or final_window:E (a pre-registration's endpoint)."""
    runs = runset.runs[runset.runs["included"]].set_index("run_dir")
    if spec == "best_top1":
        return Endpoint("best_top1", "best top-1", "best test top-1 over all evaluations", runs["best_top1_pct"])
    if spec == "final_top1":
        return Endpoint("final_top1", "final top-1", "final test top-1 (the last commit's evaluation)",
                        runs["final_top1_pct"])
    kind, number = spec.split(":")
    m = int(number)
    pick = last_evaluations if kind == "last_mean" else final_window
    behind = {run_dir: pick(metric_frame(run_dir), m) for run_dir in runs.index}
    values = pd.Series({d: rows["test_top1"].mean() * 100.0 if rows is not None else math.nan
                        for d, rows in behind.items()}, dtype=float)
    behind = {d: rows for d, rows in behind.items() if rows is not None}
    if kind == "last_mean":
        return Endpoint(f"last{m}_top1", f"mean top-1 of the last {m} evaluations",
                        f"mean test top-1 of the last {m} evaluations", values, behind)
    return Endpoint(f"window{m}_top1", f"mean top-1 over the last {m} epochs' commits",
                    f"mean test top-1 over every commit of the last {m} epochs", values, behind)


def _evaluated(metrics: pd.DataFrame) -> pd.DataFrame | None:
    if metrics.empty or "test_top1" not in metrics:
        return None
    return metrics.dropna(subset=["test_top1"]).sort_values("commit")


def last_evaluations(metrics: pd.DataFrame, m: int) -> pd.DataFrame | None:
    """The last ``m`` evaluated commits; None with fewer."""
    evaluated = _evaluated(metrics)
    return evaluated.iloc[-m:] if evaluated is not None and len(evaluated) >= m else None


def final_window(metrics: pd.DataFrame, epochs: int) -> pd.DataFrame | None:
    """Every commit of the last ``epochs`` epochs, each evaluated; None when any of them was not (the run did not
    test its final window, e.g. ``train.eval_final_epochs`` below ``epochs``): a partial window is not neutral."""
    if metrics.empty or "test_top1" not in metrics:
        return None
    last_epoch = int(metrics["epoch"].max())
    window = metrics[metrics["epoch"] > last_epoch - epochs].sort_values("commit")
    if window.empty or window["test_top1"].isna().any():
        return None
    return window


def composition(rows: pd.DataFrame) -> dict:
    """Whose merges the evaluations ``rows`` follow: the count per worker and per role (small- or large-batch)."""
    per_worker = rows["worker"].astype(int).value_counts().sort_index()
    small = int(rows["small"].astype(int).sum())
    return {"evaluations": len(rows), "per_worker": {int(w): int(c) for w, c in per_worker.items()},
            "small": small, "large": len(rows) - small}


def balance_problem(rows: pd.DataFrame, num_workers: int, num_small: int) -> str | None:
    """Why the evaluations ``rows`` do not represent the run's workers, or None: the number that follow a
    small-batch worker's merge must lie within one of its share n_S/n of the evaluations."""
    got = composition(rows)
    expected = got["evaluations"] * num_small / num_workers
    if abs(got["small"] - expected) <= 1.0:
        return None
    workers = ", ".join(f"worker {w}: {c}" for w, c in got["per_worker"].items())
    return (f"{got['small']} of its {got['evaluations']} evaluations follow a small-batch worker's merge where "
            f"n_S/n = {num_small}/{num_workers} makes {expected:g} ({workers})")


def balance_warnings(groups: pd.DataFrame, point: Endpoint) -> list[str]:
    """One warning per compared pair (a group and its baseline) whose endpoint, in any run of either side, tests the
    merges of small- and large-batch workers in other shares than the run's workers (:func:`balance_problem`)."""
    if groups.empty or not point.behind:
        return []
    by_group = groups.set_index("group")
    warnings = []
    for _, g in groups.iterrows():
        if pd.isna(g["baseline_group"]) or g["group"] == g["baseline_group"]:
            continue
        base = by_group.loc[g["baseline_group"]]
        found = []
        for side in (g, base):
            for run_dir in side["run_dirs"]:
                rows = point.behind.get(run_dir)
                problem = None if rows is None else balance_problem(rows, int(side["num_workers"]),
                                                                    int(side["num_small"]))
                if problem:
                    found.append((_name(side), run_dir, problem))
        if found:
            sides = sorted({label for label, _, _ in found})
            label, _, example = found[0]
            warnings.append(f"{_name(g)} against {_name(base)} ({g['experiment']}): the endpoint ({point.text}) is "
                            f"unbalanced in {len(found)} run(s) of {', '.join(sides)}; e.g. in one, {example}. The "
                            "two sides test other workers' merges, so the difference may be the evaluation's, not "
                            "the scheme's.")
    return warnings


def _name(group: pd.Series) -> str:
    return f"{group['scheme']} n_S={int(group['num_small'])}"
