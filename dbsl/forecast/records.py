"""The forecast against this machine's run records (issue 27): the committed study's runs on the CPU its hardware
profile was calibrated on, fitted on some seeds and checked on the others.

What is compared, per run: the record's measured clock (``summary.json`` ``measured_time``: the run's own
mini-epochs' CPU seconds on the sync rules' clock) plus its evaluation seconds (``eval_time``), against the
forecast's training clock plus its evaluation seconds. Two terms are fitted, on the fit seeds' records only:
``batch_time_fit`` (per resolution, t(B) = a B + b from the median CPU seconds per batch of whole mini-epochs at each
batch size) and ``eval_per_image`` (per resolution, non-negative least squares over the runs' evaluation seconds).
The held-out seeds' runs are the validation; the hardware profile itself (and so every plan) is left as it is.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import List, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from ..config import config_from_yaml
from ..plan import build_plan, dataset_size
from ..timemodel import profile_from_config
from . import ForecastTerms, forecast_run, run_shape

NO_COMMUNICATION = dict(link_gbit=float("inf"), latency_s=0.0, merge_gbyte_s=float("inf"))  # one process


def study_runs(root: Path, cpu: str) -> List[Path]:
    """The completed runs under ``root`` whose record says they ran on a CPU named ``cpu...``."""
    runs = []
    for summary in sorted(Path(root).glob("*/summary.json")):
        s = json.loads(summary.read_text())
        if s.get("status") == "completed" and str(s.get("environment", {}).get("cpu", "")).startswith(cpu):
            runs.append(summary.parent)
    return runs


def mini_epochs(run: Path) -> pd.DataFrame:
    """A run's mini-epochs: resolution, batch, steps, measured CPU seconds, the profile's modelled seconds."""
    cfg = config_from_yaml(run / "config.yaml")
    profile = profile_from_config(cfg.hardware)
    m = pd.read_csv(run / "metrics.csv")
    m["steps"] = m["samples"] // m["batch_size"]
    m["profile_s"] = [profile.model(r).batch_time(b) * s for r, b, s in zip(m["resolution"], m["batch_size"],
                                                                            m["steps"])]
    m["seed"] = cfg.seed
    return m


def fit_terms(runs: Sequence[Path]) -> ForecastTerms:
    """``batch_time_fit`` and ``eval_per_image`` from ``runs`` (the fit seeds), no communication (one process)."""
    frames = [mini_epochs(r) for r in runs]
    epochs = pd.concat(frames)
    per_batch = (epochs["cpu_seconds"] / epochs["steps"]).groupby([epochs["resolution"], epochs["batch_size"]])
    fit = {}
    for resolution, medians in per_batch.median().groupby(level=0):
        batches = medians.index.get_level_values(1).to_numpy(float)
        a, b = np.polyfit(batches, medians.to_numpy(), 1) if len(batches) > 1 else (0.0, float(medians.iloc[0]))
        fit[int(resolution)] = [float(a), float(b)]
    resolutions = sorted(fit)
    counts, seconds = [], []
    for run, frame in zip(runs, frames):
        images = run_shape(config_from_yaml(run / "config.yaml")).test_images
        tested = frame[frame["test_loss"].notna()]
        counts.append([images * int((tested["resolution"] == r).sum()) for r in resolutions])
        seconds.append(json.loads((run / "summary.json").read_text())["eval_time"])
    per_image = nnls(np.array(counts, float), np.array(seconds, float))[0]  # seconds are never negative
    return ForecastTerms(**NO_COMMUNICATION, batch_time_fit=fit,
                         eval_per_image={r: float(v) for r, v in zip(resolutions, per_image)},
                         source=f"fitted on {len(runs)} records")


def forecast_record(run: Path, terms: ForecastTerms) -> dict:
    """The forecast of one record: its training clock and its evaluation seconds (added, as the record's are)."""
    cfg = config_from_yaml(run / "config.yaml")
    plan = build_plan(cfg, dataset_size(cfg))
    clock = forecast_run(cfg, replace(terms, eval_per_image={}, eval_fraction=0.0), plan=plan).seconds
    tests = sum(w["evaluation"] for w in forecast_run(cfg, terms, plan=plan).workers.values())
    profile_only = forecast_run(cfg, replace(ForecastTerms.training_only()), plan=plan).seconds
    return {"clock_s": clock, "evaluation_s": tests, "forecast_s": clock + tests, "profile_clock_s": profile_only}


def validation(root: Path, cpu: str, fit_seeds: Sequence[int], skip_seeds: Sequence[int] = ()
               ) -> tuple[pd.DataFrame, pd.DataFrame, ForecastTerms]:
    """(one row per held-out run: record and forecast seconds and the error; the mini-epoch fit against the held-out
    records per resolution and batch; the fitted terms). ``skip_seeds``: runs left out of both (say, runs whose
    records show other processes beside them)."""
    runs = [r for r in study_runs(root, cpu)
            if json.loads((r / "summary.json").read_text())["seed"] not in skip_seeds]
    seed = {r: json.loads((r / "summary.json").read_text())["seed"] for r in runs}
    terms = fit_terms([r for r in runs if seed[r] in fit_seeds])
    rows = []
    for run in (r for r in runs if seed[r] not in fit_seeds):
        s = json.loads((run / "summary.json").read_text())
        f = forecast_record(run, terms)
        target = s["measured_time"] + s["eval_time"]
        rows.append({"run": run.name, "scheme": s["scheme"], "seed": s["seed"], "measured_time": s["measured_time"],
                     "eval_time": s["eval_time"], "record_s": target, **f,
                     "error_pct": 100 * (f["forecast_s"] / target - 1)})
    held = pd.concat([mini_epochs(r) for r in runs if seed[r] not in fit_seeds])
    held["fit_s"] = [terms.train_s(r, b, st, p) for r, b, st, p in
                     zip(held["resolution"], held["batch_size"], held["steps"], held["profile_s"])]
    fit = held.groupby(["resolution", "batch_size"]).agg(
        mini_epochs=("cpu_seconds", "size"), measured_s=("cpu_seconds", "median"), profile_s=("profile_s", "median"),
        forecast_fit_s=("fit_s", "median")).reset_index()
    fit["profile_error_pct"] = 100 * (fit["profile_s"] / fit["measured_s"] - 1)
    fit["forecast_fit_error_pct"] = 100 * (fit["forecast_fit_s"] / fit["measured_s"] - 1)
    return pd.DataFrame(rows), fit, terms
