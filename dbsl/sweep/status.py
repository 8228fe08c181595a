"""Where a sweep preset's runs stand, without a single test number (``dbsl sweep NAME --status``).

A pre-registered study runs for hours, across sessions, and must not be read before its runs are in. This lists
every run the preset's grids make (with the same overrides ``dbsl sweep NAME`` would be given), at the folder Hydra
gives it, ``${results_dir}/sweeps/NAME/<its identity overrides, sorted>``: its status (not started, in progress,
completed, failed, diverged, ...), the commits its metrics.csv holds out of the plan's, whether a checkpoint is there
to resume from, and how long ago its record was last written (a run "in progress" that was written to long ago has
stopped: the same ``dbsl sweep`` command resumes it). No accuracy or loss is shown.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.table import Table

from ..errors import UserError
from ..identity import identity_overrides, run_dirname
from .presets import Preset, expand_jobs, sweep_commands, sweep_dir

NOT_STARTED = "not started"
IN_PROGRESS = "in progress"  # summary.json says "running": a live run, or one stopped without a word


def run_state(run_dir: Path, now: float) -> dict:
    """What the record in ``run_dir`` says of its progress (no test numbers are read)."""
    summary_path, metrics = run_dir / "summary.json", run_dir / "metrics.csv"
    if not summary_path.is_file():
        return {"status": NOT_STARTED, "commits": 0, "total": None, "checkpoint": False, "written": None}
    summary = json.loads(summary_path.read_text())
    rows = max(0, len(metrics.read_text().splitlines()) - 1) if metrics.is_file() else 0
    written = max(p.stat().st_mtime for p in (summary_path, metrics) if p.is_file())
    status = summary.get("status", "?")
    return {"status": IN_PROGRESS if status == "running" else status, "commits": rows,
            "total": summary.get("total_commits"), "checkpoint": (run_dir / "checkpoint.pt").is_file(),
            "written": now - written}


def sweep_status(preset: Preset, extra: Sequence[str]) -> list[dict]:
    """One entry per run of the preset, grid by grid, in the order ``dbsl sweep`` runs them."""
    folder, now, found = sweep_dir(preset, extra), time.time(), []
    if not folder.is_dir():  # a mistyped results_dir or sweep_name would otherwise list every run as not started
        raise UserError(f"{folder}: no such sweep folder; give the results_dir= (and sweep_name=) the sweep runs "
                        f"with, or start it with `dbsl sweep {preset.name}`")
    for grid, command in enumerate(sweep_commands(preset, extra), 1):
        for job in expand_jobs(command[4:]):
            name = run_dirname(",".join(sorted(identity_overrides(job))))
            found.append({"grid": grid, "run": name, "overrides": job, **run_state(folder / name, now)})
    return found


def print_status(preset: Preset, extra: Sequence[str]) -> dict:
    """Print the runs' table and a one-line count; return the counts by status."""
    runs = sweep_status(preset, extra)
    table = Table(title=f"sweep {preset.name}: {sweep_dir(preset, extra)} (no test numbers)")
    for column in ("grid", "run", "status", "commits", "checkpoint", "last written"):
        table.add_column(column, overflow="fold")
    for grid in sorted({r["grid"] for r in runs}):
        in_grid = [r for r in runs if r["grid"] == grid]
        common = set.intersection(*(set(identity_overrides(r["overrides"])) for r in in_grid))
        for i, run in enumerate(in_grid):
            label = " ".join(sorted(set(identity_overrides(run["overrides"])) - common)) or "(the grid's one run)"
            total = run["total"]
            done = f"{run['commits']}/{total} ({100 * run['commits'] / total:.0f} %)" if total else "-"
            table.add_row(f"{grid}: {' '.join(sorted(common))}" if i == 0 else "", label, run["status"], done,
                          "yes" if run["checkpoint"] else "-",
                          "-" if run["written"] is None else f"{_ago(run['written'])} ago")
        table.add_section()
    counts: dict[str, int] = {}
    for run in runs:
        counts[run["status"]] = counts.get(run["status"], 0) + 1
    console = Console(width=max(Console().width, 120))
    console.print(table)
    others = [f"{n} {status}" for status, n in counts.items() if status != "completed"]
    console.print(", ".join([f"{counts.get('completed', 0)}/{len(runs)} runs completed", *others]))
    return counts


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
