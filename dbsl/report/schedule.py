"""The realised schedule: what each commit's worker actually trained at (metrics.csv) beside what the plan set for that
commit, and from it the stage-change latency of ASP (how many mini-epochs still train at the old LR or resolution
after a milestone, because their worker pulled before it)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..plan import Plan
from .collect import metric_frame


def realised(run_dir: str | Path, plan: Plan) -> pd.DataFrame:
    """What each commit's worker actually trained at (metrics.csv) beside the plan's settings for that commit; a
    commit is stale when its worker pulled before the milestone and trained the previous phase."""
    m = metric_frame(run_dir)
    if m.empty or not {"commit", "worker", "small", "phase", "resolution", "lr"} <= set(m.columns):
        return pd.DataFrame()
    m = m.dropna(subset=["commit", "phase"]).sort_values("commit")
    planned = [plan.phase_at(int(c)) for c in m["commit"]]
    return m.assign(planned_phase=[p.index for p in planned], planned_resolution=[p.resolution for p in planned],
                    planned_lr_stage=[p.lr_stage for p in planned],
                    planned_lr=[plan.lr_at(int(c)) for c in m["commit"]],
                    stale=m["phase"].astype(int).to_numpy() != np.array([p.index for p in planned]))


def read_plan(run_dir: str | Path) -> Plan | None:
    try:
        return Plan.from_dict(json.loads((Path(run_dir) / "plan.json").read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def stage_latency(run_dir: str | Path) -> pd.DataFrame:
    """Per milestone (the start of every phase but the first) of one run: the mini-epochs committed after it that
    still trained the previous phase, and whether the milestone changes the LR stage or only the CPL sub-stage."""
    plan = read_plan(run_dir)
    data = realised(run_dir, plan) if plan is not None else pd.DataFrame()
    if data.empty:
        return pd.DataFrame()
    rows = []
    for before, phase in zip(plan.phases, plan.phases[1:]):
        inside = data[(data["commit"] >= phase.start) & (data["commit"] < phase.end)]
        rows.append({"milestone": phase.start, "kind": "LR" if phase.lr_stage != before.lr_stage else "resolution",
                     "stale": int((inside["phase"] < phase.index).sum()), "workers": plan.num_workers})
    return pd.DataFrame(rows)


def latency_summary(run_dirs) -> str:
    """'after an LR milestone 2.8 mini-epochs on average (up to 3 of 4 workers); after a resolution change 1.9 (up to
    3)' over the given runs, with the share of all commits that trained stale settings."""
    frames, commits = [], 0
    for run_dir in run_dirs:
        lat = stage_latency(run_dir)
        if not lat.empty:
            frames.append(lat)
            commits += len(realised(run_dir, read_plan(run_dir)))
    if not frames:
        return ""
    lat = pd.concat(frames)
    parts = []
    for kind, part in lat.groupby("kind", sort=False):
        parts.append(f"after {'an LR milestone' if kind == 'LR' else 'a resolution change'} "
                     f"{part['stale'].mean():.1f} mini-epochs on average (up to {int(part['stale'].max())} of "
                     f"{int(part['workers'].iloc[0])} workers)")
    return (f"{'; '.join(parts)} still trained the previous phase's settings: {int(lat['stale'].sum())} of "
            f"{commits} commits ({100 * lat['stale'].sum() / commits:.1f} %) over {len(frames)} runs")
