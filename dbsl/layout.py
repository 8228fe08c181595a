"""Where dbsl keeps things under ``results_dir``: the one description of the results layout.

::

    <results_dir>/runs/<overrides>/                  one run (``dbsl run``)
    <results_dir>/sweeps/<sweep_name>/<overrides>/    a multirun's or a sweep preset's runs
    <results_dir>/tune/<study>/journal.log            a tuning study's Optuna journal ...
    <results_dir>/tune/<study>/runs/<params>/         ... and its trials' runs
    <results_dir>/conf/hardware/<name>.yaml           hardware profiles ``dbsl calibrate`` wrote
    <results_dir>/conf/forecast/<name>.yaml           their forecast terms
    <results_dir>/calibration/<name>/                 the calibration's measurements

The Hydra config tree (``hydra.run.dir``, ``hydra.sweep.dir``) names its folders through the ``dbsl_output_dir``
resolver, which takes the layout's kind (``runs``, ``sweeps``) and joins it here.
"""
from __future__ import annotations

from pathlib import Path

RUNS, SWEEPS, TUNE, CONF, CALIBRATION = "runs", "sweeps", "tune", "conf", "calibration"
JOURNAL = "journal.log"


def run_folder(results_dir, kind: str, *parts: str) -> Path:
    """``results_dir``/``kind``/``parts``: kind is :data:`RUNS` or :data:`SWEEPS` (the Hydra resolver's)."""
    if kind not in (RUNS, SWEEPS):
        raise ValueError(f"no such results folder kind: {kind!r}")
    return Path(results_dir, kind, *parts)


def sweep_dir(results_dir, name: str) -> Path:
    return Path(results_dir) / SWEEPS / name


def study_dir(results_dir, study: str) -> Path:
    return Path(results_dir) / TUNE / study


def study_journal(results_dir, study: str) -> Path:
    return study_dir(results_dir, study) / JOURNAL


def trial_runs(results_dir, study: str) -> Path:
    return study_dir(results_dir, study) / RUNS


def studies(results_dir) -> list[str]:
    """The tuning studies under ``results_dir`` (those with a journal)."""
    return sorted(p.parent.name for p in (Path(results_dir) / TUNE).glob(f"*/{JOURNAL}"))


def conf_dir(results_dir, kind: str) -> Path:
    """This machine's calibrated files: ``kind`` is ``hardware`` or ``forecast``."""
    return Path(results_dir) / CONF / kind


def calibration_dir(results_dir, name: str) -> Path:
    return Path(results_dir) / CALIBRATION / name
