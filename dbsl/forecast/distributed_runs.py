"""The forecast against distributed runs made on this machine (issue 27; ``just forecast-check`` makes them).

``results/forecast_check`` holds the forecast terms of the study's profile, measured by ``dbsl calibrate
--terms-only`` (tests per resolution, the merge, the link and start-up of the executor's own processes, the training
step timed again at the plan's batch sizes, the cores the workers share) and, right after it on the same quiet
machine, the study's regime run with ``executor=distributed`` (4 worker processes and the server on 2 cores).

What is compared, per run: the record's whole-run wall clock (``summary.json`` ``wall_time``: from the server's
start of the run, before its workers are spawned, to its end, after they left) against the forecast's whole run
(start-up + the last commit's record). Nothing is fitted to the runs: the terms come from a calibration alone. This
machine's speed drifts by several per cent within minutes, so the terms were measured more than once (before and
after the runs): every calibration's terms, kept as ``calibration/<hardware>/forecast_terms.<k>.yaml``, forecasts
every run. The workers' own time breakdown (``summary.json`` ``workers``: compute, communication, evaluation,
waiting, each worker's seconds) is set beside the forecast's (the latest calibration's), averaged over the workers.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Tuple

import pandas as pd

from .. import layout
from ..config import config_from_yaml
from ..plan import build_plan, dataset_size
from . import ForecastTerms, forecast_run
from .terms import read_terms

SWEEP = "distributed"  # the sweep name ``just forecast-check`` runs under
PARTS = ("compute", "communication", "evaluation", "waiting")


def runs(root: Path) -> List[Path]:
    """The completed distributed runs under ``root`` (sorted by folder)."""
    found = []
    for summary in sorted(layout.sweep_dir(root, SWEEP).glob("*/summary.json")):
        s = json.loads(summary.read_text())
        if s.get("status") == "completed" and s.get("executor") == "distributed":
            found.append(summary.parent)
    return found


def calibrations(root: Path, hardware: str) -> Dict[int, ForecastTerms]:
    """Every measurement of the terms, by its number (``forecast_terms.<k>.yaml``, in the order they were made)."""
    found = {}
    for path in layout.calibration_dir(root, hardware).glob("forecast_terms.*.yaml"):
        k = path.name.split(".")[1]
        if k.isdigit():
            found[int(k)] = read_terms(path)
    return dict(sorted(found.items()))


def compare(run: Path, terms: ForecastTerms) -> Tuple[dict, List[dict]]:
    """(the run's whole time against the forecast; its workers' mean time per part against the forecast's)."""
    cfg = config_from_yaml(run / "config.yaml")
    s = json.loads((run / "summary.json").read_text())
    plan = build_plan(cfg, dataset_size(cfg))
    f = forecast_run(cfg, terms, plan=plan)
    training_only = forecast_run(cfg, ForecastTerms.training_only(), plan=plan).seconds
    row = {"scheme": s["scheme"], "seed": s["seed"], "commits": f.commits, "wall_s": s["wall_time"],
           "training_s": s["training_time"], "forecast_s": f.seconds,
           "forecast_training_s": f.seconds - terms.startup_s, "training_only_s": training_only,
           "error_pct": 100 * (f.seconds / s["wall_time"] - 1),
           "training_error_pct": 100 * (f.seconds - terms.startup_s) / s["training_time"] - 100}
    n = len(s["workers"])
    measured = {k: sum(w[k] for w in s["workers"].values()) / n for k in PARTS}
    forecast = {k: sum(w[k] + (w["overhead"] if k == "compute" else 0.0) for w in f.workers.values()) / n
                for k in PARTS}
    parts = [{"scheme": s["scheme"], "part": k, "measured_s": measured[k], "forecast_s": forecast[k]}
             for k in PARTS]
    return row, parts


def validation(root: Path) -> Tuple[pd.DataFrame, pd.DataFrame, Dict[int, ForecastTerms]]:
    """(one row per calibration and run; the workers' mean seconds per part, measured and forecast by the latest
    calibration; the calibrations' terms) for the runs under ``root``, all of one profile."""
    found = runs(root)
    if not found:
        raise FileNotFoundError(f"{layout.sweep_dir(root, SWEEP)}: no completed distributed run; make them with "
                                "just forecast-check")
    hardware = {config_from_yaml(r / "config.yaml").hardware.name for r in found}
    if len(hardware) != 1:
        raise ValueError(f"{root}: the runs use {sorted(hardware)}; the check compares runs of one profile")
    measured = calibrations(root, hardware.pop())
    if not measured:
        raise FileNotFoundError(f"{root}: no forecast_terms.<k>.yaml under calibration/; make them with "
                                "dbsl calibrate --terms-only (just forecast-check)")
    rows, parts = [], []
    latest = max(measured)
    for k, terms in measured.items():
        for run in found:
            row, part = compare(run, terms)
            rows.append({"calibration": k, **row})
            if k == latest:
                parts += part
    return pd.DataFrame(rows), pd.DataFrame(parts), measured
