"""dbsl run [-m] <overrides> (also python -m dbsl.run): the Hydra app (one run, or a multirun sweep with -m).

In a multirun a failing run never stops the sweep (unless ``fail_fast=true``): its summary.json says failed, the
job's outcome is recorded (dbsl.sweep.outcomes, dbsl.sweep.job), the other runs go on, and the sweep ends with a
summary table and exit status 1. With ``fail_fast=true`` the jobs not yet started when a run fails are cancelled.

Bad input (an unknown preset or key, a value out of range, a missing dataset, a damaged record, an unusable
``results_dir``) ends the command with one ``error:`` line and exit status 2, without a traceback (``--debug`` or
``HYDRA_FULL_ERROR=1`` shows it); a diverged run, or a distributed run whose worker died, with one line and status 1;
Ctrl-C with one line.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Sequence

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ..compose import register_all
from ..config import repeated_override_warning, to_config
from ..errors import debug_requested, reported, set_debug
from ..one_run import execute
from ..paths import check_output_dir
from ..sweep.job import sweep_job
from ..sweep.outcomes import sweep_exit_code

register_all()
# results/conf (calibrated hardware profiles) is on the search path but need not exist yet; the launcher's worker
# processes (joblib) compose the config again before they import this module, so they get the filter by environment
SEARCHPATH_WARNING = "ignore:provider=hydra.searchpath in main:UserWarning"
warnings.filterwarnings("ignore", message=r"provider=hydra\.searchpath.*is not available")
if SEARCHPATH_WARNING not in os.environ.get("PYTHONWARNINGS", ""):
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), SEARCHPATH_WARNING]))
INTERRUPTED = "run the same command again to resume from the last checkpoint"
_from_cli = False  # started by cli(): errors are reported as one line (a test may call app() itself)


def task_overrides() -> list[str]:
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def app(dcfg: DictConfig) -> dict:
    """The Hydra app (``dbsl.run.main``): reads its overrides from ``sys.argv``."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return sweep_job(dcfg)
    # inside the job: Hydra's job runner would print its own line and a traceback for an error escaping it
    with reported(INTERRUPTED) if _from_cli else contextlib.nullcontext():
        return execute(to_config(dcfg), task_overrides())


def cli() -> None:
    """The command: like app(), but a multirun with a failed run exits with status 1, and errors are reported as one
    line (status 2 for bad input)."""
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
            app()
    finally:
        _from_cli = False
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before
    raise SystemExit(sweep_exit_code())


def main(argv: Sequence[str] | None = None) -> int:
    """``dbsl run ARGS``: Hydra reads its arguments from ``sys.argv``, so ``argv`` (when given) replaces them there.
    Ends with SystemExit, as cli() does."""
    if argv is not None:
        sys.argv[1:] = list(argv)
    cli()
    return 0
