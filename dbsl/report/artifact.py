"""Whose merge the endpoint tests, measured (the robustness study's arm A): with a final-window endpoint every
worker's merges are tested, so within each run the tests after small-batch merges can be set against those after
large-batch merges; and the first study's endpoint (the last few periodic tests, which a fixed push order steers to
one worker) can be recomputed in the same runs and its contrasts set beside the neutral ones, seed by seed."""
from __future__ import annotations

import math

import pandas as pd

from . import stats
from .collect import RunSet, by_seed, is_reference
from .endpoint import Endpoint, endpoint
from .render import Table, num

STEERED = "last_mean:3"  # the first study's endpoint


def _interval(values) -> tuple[float, float, float]:
    r = stats.paired(list(values), 0.95)
    return r.mean, r.low, r.high


def _ci(mean: float, low: float, high: float) -> str:
    return f"{mean:+.2f}" if math.isnan(low) else f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]"


def merge_role_table(runset: RunSet, groups: pd.DataFrame, point: Endpoint) -> Table | None:
    """Per group with small-batch workers: each run's window mean after small-batch merges minus that after
    large-batch merges (pp), the mean over seeds with its 95 % interval."""
    if not point.key.startswith("window") or groups.empty:
        return None
    rows = []
    for _, g in groups[(groups["num_small"] > 0) & ~groups["num_workers"].map(is_reference)].iterrows():
        diffs = []
        for run_dir in g["run_dirs"]:
            window = point.behind.get(run_dir)
            if window is None:
                continue
            small = window[window["small"].astype(int) == 1]["test_top1"]
            large = window[window["small"].astype(int) == 0]["test_top1"]
            if len(small) and len(large):
                diffs.append(100.0 * (small.mean() - large.mean()))
        if diffs:
            mean, low, high = _interval(diffs)
            rows.append({"experiment": g["experiment"], "label": g["label"], "runs": len(diffs),
                         "small_minus_large_pp": mean, "low": low, "high": high,
                         "per_run": ";".join(f"{d:+.3f}" for d in diffs)})
    if not rows:
        return None
    data = pd.DataFrame(rows)
    display = pd.DataFrame({"experiment": data["experiment"], "group": data["label"], "runs": data["runs"],
                            "after small − after large merges (pp), 95 % CI": [
                                _ci(m, lo, hi) for m, lo, hi in zip(data["small_minus_large_pp"], data["low"],
                                                                    data["high"])]})
    notes = [f"Within each run, the endpoint's tests ({point.text}) after a small-batch worker's merge against those "
             "after a large-batch worker's; mean over the runs (seeds) with its paired 95 % interval. A difference "
             "here is what an endpoint that tests only one role's merges adds to a scheme's change."]
    return Table("merge_roles", "Whose merge is tested: after small- against after large-batch merges", data,
                 display, notes)


def steered_table(runset: RunSet, groups: pd.DataFrame, point: Endpoint) -> Table | None:
    """Per group with a baseline: its change on the neutral endpoint and on the first study's (the last 3 periodic
    tests) in the same runs, and the per-seed difference of the two with its 95 % interval."""
    if not point.key.startswith("window") or groups.empty:
        return None
    steered = endpoint(runset, STEERED)
    runs = runset.runs[runset.runs["included"]].set_index("run_dir")
    by_group = groups.set_index("group")
    rows = []
    for _, g in groups.iterrows():
        if pd.isna(g["baseline_group"]) or g["group"] == g["baseline_group"] or is_reference(g["num_workers"]):
            continue
        ours, base = runs.loc[g["run_dirs"]], runs.loc[by_group.loc[g["baseline_group"], "run_dirs"]]
        neutral = by_seed(ours, point.values) - by_seed(base, point.values)
        old = by_seed(ours, steered.values) - by_seed(base, steered.values)
        both = pd.concat([neutral.rename("neutral"), old.rename("steered")], axis=1).dropna()
        if both.empty:
            continue
        mean, low, high = _interval(both["steered"] - both["neutral"])
        rows.append({"experiment": g["experiment"], "label": g["label"], "seeds": len(both),
                     "delta_neutral_pp": both["neutral"].mean(), "delta_steered_pp": both["steered"].mean(),
                     "steered_minus_neutral_pp": mean, "low": low, "high": high})
    if not rows:
        return None
    data = pd.DataFrame(rows)
    display = pd.DataFrame({
        "experiment": data["experiment"], "group": data["label"], "seeds": data["seeds"],
        f"Δ {point.label} (pp)": data["delta_neutral_pp"].map(lambda v: num(v, 2, signed=True)),
        f"Δ {steered.label} (pp)": data["delta_steered_pp"].map(lambda v: num(v, 2, signed=True)),
        "steered − neutral (pp), 95 % CI": [_ci(m, lo, hi) for m, lo, hi in zip(
            data["steered_minus_neutral_pp"], data["low"], data["high"])]})
    notes = [f"The same runs judged on two endpoints: the neutral one ({point.text}) and the first study's "
             f"({steered.text}), whose tests a fixed push order steers to one worker. Paired by seed; the last column "
             "is how much the steered endpoint adds to the change against the baseline."]
    return Table("steered_endpoint", "The first study's endpoint beside the neutral one, in the same runs", data,
                 display, notes)
