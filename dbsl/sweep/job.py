"""One job of a Hydra multirun (``dbsl run -m ...``): its share of the cores, its labelled log lines, and a run
that records its outcome and never stops the sweep (unless ``fail_fast=true``)."""
from __future__ import annotations

import logging
import os
import traceback

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from ..config import to_config
from ..errors import Diverged, RecordError, RunFailure, Unavailable, one_line, user_error
from ..machine import prepare
from ..one_run import execute
from ..ps.launch import torchrun_worker
from .outcomes import any_job_failed, job_outcome, write_job_outcome, write_job_started

log = logging.getLogger("dbsl")


def share_cores(dcfg: DictConfig) -> None:
    """Under the joblib launcher, give each parallel run its share of the cores (unless train.threads is set):
    torch's default of one thread per core in every run slows them all down many times over."""
    launcher = HydraConfig.get().launcher
    if "joblib" not in str(launcher.get("_target_", "")):
        return
    n_jobs = launcher.get("n_jobs") or -1
    prepare(OmegaConf.select(dcfg, "train.threads", default=0), sharing=(os.cpu_count() or 1) if n_jobs < 0 else n_jobs)


class RunLabel(logging.Filter):
    """Puts a run's short label in front of each of its log lines: the parallel runs of a sweep share a terminal."""

    def __init__(self, label: str):
        super().__init__()
        self.label = label

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "run_label", None):
            record.run_label = self.label
            record.msg = f"[{self.label}] {record.msg}"
        return True


def label_log_lines(label: str) -> None:
    """Label this job's log lines (a launcher's worker process may run several jobs: the last label replaces the
    earlier one)."""
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RunLabel)]:
            handler.removeFilter(old)
        handler.addFilter(RunLabel(label))


def refused_input(known: BaseException | None) -> bool:
    """A user error that refuses a run before it starts: bad input. Not a diverged run, a dead worker, nor a record's
    error (a full disk mid-run is one), which may come after work was done."""
    return known is not None and not isinstance(known, (Diverged, RecordError, RunFailure, Unavailable))


def sweep_job(dcfg: DictConfig) -> dict:
    """One job of a multirun: run it, record its outcome, and keep the sweep going whatever happens to it."""
    hc = HydraConfig.get()
    overrides, run_dir = list(hc.overrides.task), hc.runtime.output_dir
    label_log_lines(f"#{hc.job.num} {hc.job.override_dirname or 'default'}")
    if not torchrun_worker():
        write_job_started(hc.sweep.dir, hc.job.num)
    if OmegaConf.select(dcfg, "fail_fast", default=False) and any_job_failed(hc.sweep.dir):
        outcome = job_outcome("cancelled", run_dir, overrides, error="not started: an earlier run failed (fail_fast)")
    else:
        try:
            share_cores(dcfg)
            summary = execute(to_config(dcfg), overrides)
            outcome = job_outcome("skipped" if summary.get("skipped") else "completed", run_dir, overrides, summary)
        except Exception as err:  # noqa: BLE001 - the sweep goes on; one_run.execute has marked the record failed
            known = user_error(err)
            if known is None:
                log.error("run %s failed:\n%s", run_dir, traceback.format_exc(limit=20))
            else:  # bad input, a diverged run or a dead worker: the message says it all
                log.error("run %s failed: %s", run_dir, one_line(known))
            status = "diverged" if isinstance(known, Diverged) else "failed"
            outcome = job_outcome(status, run_dir, overrides, error=f"{type(err).__name__}: {err}",
                                  bad_input=refused_input(known))
    if not torchrun_worker():  # under torchrun the server (rank 0) reports the run, ranks 1..n serve it
        write_job_outcome(hc.sweep.dir, hc.job.num, outcome)
    return outcome
