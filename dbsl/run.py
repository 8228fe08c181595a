"""python -m dbsl.run [-m] <overrides>: the Hydra app (one run, or a multirun sweep with -m).

In a multirun a failing run never stops the sweep (unless ``fail_fast=true``): its summary.json says failed, the
job's outcome is recorded (dbsl.sweep.outcomes), the other runs go on, and the sweep ends with a summary table and exit
status 1. With ``fail_fast=true`` the jobs not yet started when a run fails are cancelled.

Bad input (an unknown preset or key, a value out of range, a missing dataset, a damaged record, an unusable
``results_dir``) ends the command with one ``error:`` line and exit status 2, without a traceback (``--debug`` or
``HYDRA_FULL_ERROR=1`` shows it); a diverged run with one line and status 1; Ctrl-C with one line.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
import warnings

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from .compose import register_all
from .config import repeated_override_warning, to_config
from .errors import Diverged, debug_requested, one_line, reported, set_debug, user_error
from .machine import prepare
from .paths import check_output_dir
from .ps.launch import torchrun_worker
from .one_run import execute
from .sweep.outcomes import any_job_failed, job_outcome, sweep_exit_code, write_job_outcome, write_job_started

log = logging.getLogger("dbsl")
register_all()
# results/conf (calibrated hardware profiles) is on the search path but need not exist yet; the launcher's worker
# processes (joblib) compose the config again before they import this module, so they get the filter by environment
SEARCHPATH_WARNING = "ignore:provider=hydra.searchpath in main:UserWarning"
warnings.filterwarnings("ignore", message=r"provider=hydra\.searchpath.*is not available")
if SEARCHPATH_WARNING not in os.environ.get("PYTHONWARNINGS", ""):
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), SEARCHPATH_WARNING]))
INTERRUPTED = "run the same command again to resume from the last checkpoint"
_from_cli = False  # started by cli(): errors are reported as one line (a test may call main() itself)


def task_overrides() -> list[str]:
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


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
            else:  # bad input or a diverged run: the message says it all
                log.error("run %s failed: %s", run_dir, one_line(known))
            status = "diverged" if isinstance(known, Diverged) else "failed"
            outcome = job_outcome(status, run_dir, overrides, error=f"{type(err).__name__}: {err}")
    if not torchrun_worker():  # under torchrun the server (rank 0) reports the run, ranks 1..n serve it
        write_job_outcome(hc.sweep.dir, hc.job.num, outcome)
    return outcome


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(dcfg: DictConfig) -> dict:
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return sweep_job(dcfg)
    # inside the job: Hydra's job runner would print its own line and a traceback for an error escaping it
    with reported(INTERRUPTED) if _from_cli else contextlib.nullcontext():
        return execute(to_config(dcfg), task_overrides())


def cli() -> None:
    """The console entry point: like main(), but a multirun with a failed run exits with status 1, and errors are
    reported as one line (status 2 for bad input)."""
    global _from_cli
    debug, sys.argv[1:] = debug_requested(sys.argv[1:])
    set_debug(debug)
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its composition errors instead of printing them
    _from_cli = True
    try:
        with reported(INTERRUPTED):
            if warning := repeated_override_warning(sys.argv[1:]):
                print(warning, file=sys.stderr, flush=True)
            for override in sys.argv[1:]:  # Hydra makes these folders itself, with a traceback when it cannot
                key, _, value = override.partition("=")
                if key in ("hydra.run.dir", "hydra.sweep.dir"):
                    check_output_dir(value, key, "results/runs/mine")
            main()
    finally:
        _from_cli = False
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before
    raise SystemExit(sweep_exit_code())


if __name__ == "__main__":
    cli()
