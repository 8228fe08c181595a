"""Named sweep presets, ``sweeps/NAME.yaml``: load them, expand them into runs, and run them with progress lines
(the command is ``dbsl sweep NAME [overrides ...]``, :mod:`dbsl.cli.sweep`, also ``python -m dbsl.sweep``).

A preset lists one or more grids, each a line of Hydra overrides with comma-separated sweeps, e.g. ::

    description: Paper Table 8 (CIFAR-100, 4 x GTX 1080, k=1.05): DBL and hybrid for n_S = 0..4
    grids:
      - experiment=paper_cifar100 scheme=dbsl,hybrid dbsl.num_small=0,1,2,3,4

Each grid runs as one ``python -m dbsl.run -m sweep_name=NAME <grid> <overrides>`` (the overrides given here win
over the grid's, key by key), so every run lands in ``${results_dir}/sweeps/NAME/<its overrides>``: re-running a
sweep skips completed runs and resumes interrupted ones. At the end the runs of all grids are tabulated; the exit
status is 1 when any run failed, 2 when the overrides are bad (an unknown preset or key: no run starts).
"""
from __future__ import annotations

import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Sequence

import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from rich.console import Console

from .. import layout
from ..config import Config
from ..errors import UserError
from ..identity import override_key
from .outcomes import job_progress, read_sweep_summary
from .table import OUTCOMES, print_outcomes

PRESET_KEYS = {"description", "grids"}


class PresetError(UserError):
    """A sweep preset that is missing or malformed; the message says which file and what to fix."""


@dataclass
class Preset:
    name: str
    path: Path
    description: str
    grids: List[List[str]] = field(default_factory=list)


def preset_dirs() -> list[Path]:
    """Where presets are looked up: ./sweeps, then the sweeps/ folder next to the dbsl package (the repository's)."""
    dirs = [Path.cwd() / "sweeps", Path(__file__).resolve().parents[2] / "sweeps"]
    return list(dict.fromkeys(d.resolve() for d in dirs if d.is_dir()))


def list_presets() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in reversed(preset_dirs()):  # ./sweeps wins over the repository's
        found.update({p.stem: p for p in sorted(folder.glob("*.yaml"))})
    return dict(sorted(found.items()))


def load_preset(name: str) -> Preset:
    """A preset by name (sweeps/NAME.yaml) or by path."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else list_presets().get(name)
    if path is None or not path.is_file():
        known = ", ".join(list_presets()) or "none"
        raise PresetError(f"no sweep preset {name!r} (known: {known}); add sweeps/{name}.yaml or pass a path")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - PRESET_KEYS
    if unknown:
        raise PresetError(f"{path}: unknown key(s) {sorted(unknown)}; a preset has only {sorted(PRESET_KEYS)}")
    grids = data.get("grids")
    if not isinstance(grids, list) or not grids or not all(isinstance(g, str) and g.strip() for g in grids):
        raise PresetError(f"{path}: 'grids' must be a non-empty list of override lines, e.g. "
                          "'- experiment=smoke scheme=dbsl,hybrid dbsl.num_small=0,1,2'")
    return Preset(path.stem, path, str(data.get("description", "")), [shlex.split(g) for g in grids])


def merge_overrides(grid: Sequence[str], extra: Sequence[str]) -> list[str]:
    """The grid's overrides with ``extra`` appended; an extra override replaces the grid's one with the same key."""
    keys = {override_key(o) for o in extra}
    return [o for o in grid if override_key(o) not in keys] + list(extra)


def expand_jobs(overrides: Sequence[str]) -> list[list[str]]:
    """The runs one multirun of ``overrides`` makes (Hydra's own parser and basic sweeper's cartesian product)."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def sweep_commands(preset: Preset, extra: Sequence[str]) -> list[list[str]]:
    has_name = any(override_key(o) == "sweep_name" for o in extra)
    head = [] if has_name else [f"sweep_name={preset.name}"]
    return [[sys.executable, "-m", "dbsl.run", "-m", *head, *merge_overrides(grid, extra)] for grid in preset.grids]


def sweep_dir(preset: Preset, extra: Sequence[str]) -> Path:
    values = {override_key(o): o.split("=", 1)[1] for o in extra if "=" in o}
    return layout.sweep_dir(values.get("results_dir", Config.results_dir), values.get("sweep_name", preset.name))


class Progress:
    """While one grid runs: a line whenever the sweep's counts change, k/N runs done (completed, skipped, failed),
    how many are running, the elapsed time and an ETA from the pace of the runs that trained (skipped ones take no
    time). It reads the jobs' marker and outcome files (dbsl.sweep.outcomes), so it works with any launcher."""

    def __init__(self, name: str, folder: Path, state: dict, every: float = 2.0):
        self.name, self.folder, self.state, self.every = name, folder, state, every
        self.since, self.stop = time.time(), threading.Event()
        self.console = Console(stderr=True, highlight=False, soft_wrap=True)  # one line, also in a log file

    def __enter__(self):
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        counts = self._look()
        self._show(counts)
        self.state["done"] += sum(counts[k] for k in OUTCOMES)
        for key in OUTCOMES:
            self.state["counts"][key] = self.state["counts"].get(key, 0) + counts[key]

    def _look(self) -> dict:
        return job_progress(self.folder, self.since)

    def _show(self, counts: dict) -> None:
        if not any(counts.values()):  # nothing started yet (or the grid was refused: its error line says why)
            return
        text = self.line(counts)
        if text.split(", elapsed")[0] != self.state.get("shown"):  # a line when the counts change, not the clock
            self.state["shown"] = text.split(", elapsed")[0]
            self.console.print(text)

    def _watch(self) -> None:
        while not self.stop.wait(self.every):
            self._show(self._look())

    def line(self, counts: dict) -> str:
        state, grid_done = self.state, sum(counts[k] for k in OUTCOMES)
        done = state["done"] + grid_done
        total = {k: state["counts"].get(k, 0) + counts[k] for k in OUTCOMES}
        running = max(0, counts["started"] - grid_done)
        elapsed = time.time() - state["started"]
        trained = total["completed"] + total["failed"] + total["diverged"]
        eta = ("finished" if done >= state["total"] else
               f"ETA {_clock(elapsed / trained * (state['total'] - done))}" if trained else "ETA after the first run")
        return (f"[bold]sweep {self.name}: {done}/{state['total']} runs done[/bold] ({total['completed']} completed, "
                f"{total['skipped']} skipped, {total['failed'] + total['diverged']} failed), {running} running, "
                f"elapsed {_clock(elapsed)}, {eta}")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def run_preset(preset: Preset, extra: Sequence[str], dry_run: bool = False) -> int:
    """Run every grid of ``preset``; print the runs this call touched; 1 if any failed."""
    fail_fast = any(o in ("fail_fast=true", "fail_fast=True") for o in extra)
    started, status = time.time(), 0
    progress = {"total": sum(len(expand_jobs(c[4:])) for c in sweep_commands(preset, extra)), "done": 0,
                "counts": {}, "started": started}
    for command in sweep_commands(preset, extra):
        overrides = command[4:]
        print(f"$ {shlex.join(command)}\n  {len(expand_jobs(overrides))} runs", flush=True)
        if dry_run:
            continue
        launched = len(read_sweep_summary(sweep_dir(preset, extra))["invocations"])
        with Progress(preset.name, sweep_dir(preset, extra), progress):
            code = subprocess.call(command)
        launched = len(read_sweep_summary(sweep_dir(preset, extra))["invocations"]) > launched
        if code == 2 and not launched:  # bad input before any job (its one line is printed): the other grids share it
            return 2
        if code:
            status = 1
            if fail_fast:
                break
    if dry_run:
        return 0
    folder = sweep_dir(preset, extra)
    runs = [r for r in read_sweep_summary(folder)["runs"].values() if r.get("updated", 0) >= started]
    counts = print_outcomes(f"sweep {preset.name} (all grids): {folder}", runs)
    return 1 if status or counts["failed"] or counts["diverged"] else 0
