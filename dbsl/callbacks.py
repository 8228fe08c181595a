"""Multirun bookkeeping: each job's outcome, and the sweep summary a Hydra callback writes at the end.

Hydra's basic sweeper stops reporting at the first failed job, so ``dbsl.run`` never lets a job's exception reach
it in a multirun: each job writes its outcome (completed / skipped / failed / cancelled / diverged) to
``<sweep dir>/.jobs/<job number>.json`` (atomically; jobs may run in other processes under the joblib or submitit
launcher). :class:`SweepSummary` clears those files when a multirun starts and, when it ends, merges them into
``<sweep dir>/sweep_summary.json`` (one entry per run directory, the latest outcome wins), prints the table and
sets :data:`LAST_SWEEP`, from which ``python -m dbsl.run -m`` takes its exit status (1 when any job failed).
"""
from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterable

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("dbsl")

JOBS_DIR = ".jobs"
SUMMARY_FILE = "sweep_summary.json"
OUTCOMES = ("completed", "skipped", "failed", "cancelled", "diverged")

LAST_SWEEP: dict | None = None  # counts of the last multirun in this process (set by SweepSummary)


@functools.lru_cache(maxsize=None)
def non_identity_keys() -> frozenset:
    """Override keys that say where or how a run goes, not what it computes: conf/config.yaml's
    ``hydra.job.config.override_dirname.exclude_keys`` (left out of run directory names, labels, tags, study specs)."""
    config = yaml.safe_load((Path(__file__).parent / "conf" / "config.yaml").read_text())
    return frozenset(config["hydra"]["job"]["config"]["override_dirname"]["exclude_keys"])


def override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def identity_overrides(overrides: Iterable[str]) -> list[str]:
    """The overrides that define what a run computes."""
    return [o for o in overrides if override_key(o) not in non_identity_keys()]


def job_outcome(status: str, run_dir: str, overrides: Iterable[str], summary: dict | None = None,
                error: str | None = None) -> dict:
    """One job's outcome: what ran, how it ended, and its headline numbers."""
    if status not in OUTCOMES:
        raise ValueError(f"job status must be one of {OUTCOMES}, not {status!r}")
    summary = summary or {}
    best, final = summary.get("best") or {}, summary.get("final") or {}
    return {"run": Path(run_dir).name, "run_dir": str(run_dir), "status": status, "overrides": list(overrides),
            "best_test_top1": best.get("test_top1"), "final_test_top1": final.get("test_top1"),
            "modelled_time": summary.get("modelled_time"), "wall_time": summary.get("wall_time"),
            "error": error or summary.get("error"), "updated": time.time()}


def write_job_outcome(sweep_dir: Path | str, job_num: int, outcome: dict) -> None:
    from .record import write_atomic  # imported here: the sweep driver reads summaries without loading torch

    write_atomic(Path(sweep_dir) / JOBS_DIR / f"{job_num}.json", json.dumps(outcome, indent=2) + "\n")


def read_job_outcomes(sweep_dir: Path | str) -> list[dict]:
    """The outcomes of the current (or last) multirun into ``sweep_dir``, in job order."""
    files = sorted((Path(sweep_dir) / JOBS_DIR).glob("*.json"), key=lambda p: int(p.stem))
    return [json.loads(p.read_text()) for p in files]


def any_job_failed(sweep_dir: Path | str) -> bool:
    return any(o["status"] in ("failed", "diverged") for o in read_job_outcomes(sweep_dir))


def read_sweep_summary(sweep_dir: Path | str) -> dict:
    path = Path(sweep_dir) / SUMMARY_FILE
    if not path.exists():
        return {"sweep_dir": str(sweep_dir), "runs": {}, "invocations": []}
    return json.loads(path.read_text())


def merge_sweep_summary(sweep_dir: Path | str, outcomes: list[dict], invocation: dict) -> dict:
    """Fold one multirun's outcomes into sweep_summary.json (atomically) and return the merged summary."""
    from .record import write_atomic

    data = read_sweep_summary(sweep_dir)
    for outcome in outcomes:
        data["runs"][outcome["run"]] = outcome
    data["invocations"].append(invocation)
    data["updated"] = time.time()
    write_atomic(Path(sweep_dir) / SUMMARY_FILE, json.dumps(data, indent=2) + "\n")
    return data


def count_outcomes(outcomes: Iterable[dict]) -> dict:
    counts = {status: 0 for status in OUTCOMES}
    for outcome in outcomes:
        counts[outcome["status"]] += 1
    return counts


def run_labels(outcomes: list[dict]) -> list[str]:
    """Short names: the overrides that tell the runs apart (the directory names can be long or hashed)."""
    sets = [set(identity_overrides(outcome["overrides"])) for outcome in outcomes]
    common = set.intersection(*sets) if len(sets) > 1 else set()
    return [" ".join(sorted(s - common)) or outcome["run"] for s, outcome in zip(sets, outcomes)]


def print_outcomes(title: str, outcomes: list[dict]) -> dict:
    """Print the per-run table and a one-line count; return the counts."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("status", "run", "best top-1", "final top-1", "modelled s", "error"):
        table.add_column(column, overflow="fold")
    styles = {"completed": "green", "skipped": "cyan", "failed": "bold red", "cancelled": "yellow",
              "diverged": "bold magenta"}
    for o, label in zip(outcomes, run_labels(outcomes)):
        table.add_row(f"[{styles[o['status']]}]{o['status']}[/]", label, _fmt(o["best_test_top1"]),
                      _fmt(o["final_test_top1"]), _fmt(o["modelled_time"], ".1f"), (o.get("error") or "")[:160])
    counts = count_outcomes(outcomes)
    console = Console(width=max(Console().width, 120))
    console.print(table)
    console.print(", ".join(f"{n} {status}" for status, n in counts.items()))
    return counts


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def torchrun_worker_rank() -> bool:
    """A process torchrun started as rank 1..n (a worker of the distributed executor)."""
    return os.environ.get("RANK", "0") != "0" and "MASTER_ADDR" in os.environ


class SweepSummary(Callback):
    """Hydra callback (configured in conf/config.yaml): per-multirun summary of completed / skipped / failed runs."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_SWEEP
        LAST_SWEEP = None
        if torchrun_worker_rank():  # under torchrun only rank 0 (the server) keeps the sweep's books
            return
        self.started = time.time()
        shutil.rmtree(Path(config.hydra.sweep.dir) / JOBS_DIR, ignore_errors=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_SWEEP
        if torchrun_worker_rank():
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        outcomes = read_job_outcomes(sweep_dir)
        counts = count_outcomes(outcomes)
        merge_sweep_summary(sweep_dir, outcomes, {"started": getattr(self, "started", None), "finished": time.time(),
                                                  "overrides": list(config.hydra.overrides.task), **counts})
        print_outcomes(f"sweep {config.get('sweep_name', sweep_dir.name)}: {sweep_dir}", outcomes)
        LAST_SWEEP = {"sweep_dir": str(sweep_dir), **counts}
        if counts["failed"] or counts["diverged"]:
            log.error("%d of %d runs failed or diverged (errors in the table above and in %s)",
                      counts["failed"] + counts["diverged"], len(outcomes), sweep_dir / SUMMARY_FILE)


def sweep_exit_code() -> int:
    """1 when the last multirun of this process had a failed or diverged run, else 0."""
    return 1 if LAST_SWEEP and (LAST_SWEEP.get("failed") or LAST_SWEEP.get("diverged")) else 0
