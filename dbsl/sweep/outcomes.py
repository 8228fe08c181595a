"""Multirun bookkeeping: each job's outcome, and the sweep summary a Hydra callback writes at the end.

Hydra's basic sweeper stops reporting at the first failed job, so ``dbsl.run`` never lets a job's exception reach
it in a multirun: each job writes its outcome (completed / skipped / failed / cancelled / diverged) to
``<sweep dir>/.jobs/<job number>.json`` (atomically; jobs may run in other processes under the joblib or submitit
launcher). :class:`SweepSummary` clears those files when a multirun starts and, when it ends, merges them into
``<sweep dir>/sweep_summary.json`` (one entry per run directory, the latest outcome wins), prints the table and
sets :data:`LAST_SWEEP`, from which ``python -m dbsl.run -m`` takes its exit status (1 when any job failed).
"""
from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ..ps.launch import torchrun_worker
from .table import OUTCOMES, count_outcomes, print_outcomes

log = logging.getLogger("dbsl")

JOBS_DIR = ".jobs"
SUMMARY_FILE = "sweep_summary.json"

LAST_SWEEP: dict | None = None  # counts of the last multirun in this process (set by SweepSummary)


def job_outcome(status: str, run_dir: str, overrides: Iterable[str], summary: dict | None = None,
                error: str | None = None, bad_input: bool = False) -> dict:
    """One job's outcome: what ran, how it ended, and its headline numbers (``bad_input``: refused before any
    work, the user's input at fault)."""
    if status not in OUTCOMES:
        raise ValueError(f"job status must be one of {OUTCOMES}, not {status!r}")
    summary = summary or {}
    best, final = summary.get("best") or {}, summary.get("final") or {}
    return {"run": Path(run_dir).name, "run_dir": str(run_dir), "status": status, "overrides": list(overrides),
            "best_test_top1": best.get("test_top1"), "final_test_top1": final.get("test_top1"),
            "modelled_time": summary.get("modelled_time"), "wall_time": summary.get("wall_time"),
            "error": error or summary.get("error"), "bad_input": bad_input, "updated": time.time()}


def write_job_started(sweep_dir: Path | str, job_num: int) -> None:
    """Mark a job as started (``.jobs/<num>.started``), so that a watcher can count the runs in progress."""
    folder = Path(sweep_dir) / JOBS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{job_num}.started").write_text(f"{time.time()}\n")


def job_progress(sweep_dir: Path | str, since: float = 0.0) -> dict:
    """Counts of the current multirun's jobs (files written at or after ``since``): started, and each outcome of
    those that ended."""
    folder = Path(sweep_dir) / JOBS_DIR
    try:
        started = sum(1 for p in folder.glob("*.started") if p.stat().st_mtime >= since)
        outcomes = [o for o in read_job_outcomes(sweep_dir) if o.get("updated", 0) >= since]
    except (OSError, ValueError):  # a file being replaced or a folder being cleared: the next look sees it
        started, outcomes = 0, []
    return {"started": started, **count_outcomes(outcomes)}


def write_job_outcome(sweep_dir: Path | str, job_num: int, outcome: dict) -> None:
    from ..record import write_atomic  # imported here: the sweep driver reads summaries without loading torch

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
    from ..record import write_atomic

    data = read_sweep_summary(sweep_dir)
    for outcome in outcomes:
        data["runs"][outcome["run"]] = outcome
    data["invocations"].append(invocation)
    data["updated"] = time.time()
    write_atomic(Path(sweep_dir) / SUMMARY_FILE, json.dumps(data, indent=2) + "\n")
    return data


class SweepSummary(Callback):
    """Hydra callback (configured in conf/config.yaml): per-multirun summary of completed / skipped / failed runs."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_SWEEP
        LAST_SWEEP = None
        if torchrun_worker():  # under torchrun only rank 0 (the server) keeps the sweep's books
            return
        self.started = time.time()
        shutil.rmtree(Path(config.hydra.sweep.dir) / JOBS_DIR, ignore_errors=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_SWEEP
        if torchrun_worker():
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        outcomes = read_job_outcomes(sweep_dir)
        counts = count_outcomes(outcomes)
        merge_sweep_summary(sweep_dir, outcomes, {"started": getattr(self, "started", None), "finished": time.time(),
                                                  "overrides": list(config.hydra.overrides.task), **counts})
        print_outcomes(f"sweep {config.get('sweep_name', sweep_dir.name)}: {sweep_dir}", outcomes)
        LAST_SWEEP = {"sweep_dir": str(sweep_dir), **counts, "refused": refused(outcomes)}
        if counts["failed"] or counts["diverged"]:
            log.error("%d of %d runs failed or diverged (errors in the table above and in %s)",
                      counts["failed"] + counts["diverged"], len(outcomes), sweep_dir / SUMMARY_FILE)


def refused(outcomes: list[dict]) -> str | None:
    """The first error when every run of a multirun was refused for bad input (nothing ran), else None."""
    if outcomes and all(o["status"] == "failed" and o.get("bad_input") for o in outcomes):
        return outcomes[0]["error"]
    return None


def sweep_exit_code() -> int:
    """2 when every run of the last multirun of this process was refused for bad input (dbsl's code for bad input;
    the error is then also printed as one ``error:`` line), 1 when it had a failed or diverged run, else 0."""
    if LAST_SWEEP and LAST_SWEEP.get("refused"):
        error = LAST_SWEEP["refused"].split(": ", 1)[-1]
        print(f"error: every run of the multirun was refused: {error}", file=sys.stderr)
        return 2
    return 1 if LAST_SWEEP and (LAST_SWEEP.get("failed") or LAST_SWEEP.get("diverged")) else 0
