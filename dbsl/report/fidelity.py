"""How well the time model predicts (the paper's Table 4 layout): measured mini-epoch times of the runs against the
plan's Eq. 2 prediction (the modelled seconds), and calibration measurements against their linear fit."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Mapping, Sequence

import numpy as np
import pandas as pd

from ..timemodel import fit_linear
from .collect import metric_frame
from .render import Table, mean_std, num, significant


def mini_epoch_times(run_dir: str | Path) -> pd.DataFrame:
    """Per commit: resolution, small or large worker, B, samples, measured seconds (metrics.csv ``seconds``; in older
    records the step of the cumulative compute_time), measured CPU seconds (``cpu_seconds``, newer records) and the
    plan's predicted seconds for that worker's mini-epoch."""
    metrics = metric_frame(run_dir)
    needed = {"commit", "compute_time", "phase", "small", "resolution", "batch_size", "samples"}
    if metrics.empty or not needed <= set(metrics.columns):
        return pd.DataFrame()
    metrics = metrics.dropna(subset=list(needed)).sort_values("commit")
    if "seconds" in metrics and metrics["seconds"].notna().all():
        measured = metrics["seconds"]
    else:
        measured = metrics["compute_time"].diff()
        measured.iloc[0] = metrics["compute_time"].iloc[0]
    cpu = metrics["cpu_seconds"] if "cpu_seconds" in metrics else pd.Series(np.nan, index=metrics.index)
    try:
        phases = {p["index"]: p for p in json.loads((Path(run_dir) / "plan.json").read_text())["phases"]}
        predicted = [phases[int(ph)]["time_small" if small else "time_large"] if int(ph) in phases else np.nan
                     for ph, small in zip(metrics["phase"], metrics["small"])]
    except (OSError, ValueError, KeyError, TypeError):  # no or an unreadable plan.json: no prediction
        return pd.DataFrame()
    return pd.DataFrame({"resolution": metrics["resolution"].astype(int), "small": metrics["small"].astype(bool),
                         "batch_size": metrics["batch_size"].astype(int), "samples": metrics["samples"].astype(int),
                         "measured_s": measured.to_numpy(), "cpu_s": cpu.to_numpy(), "predicted_s": predicted})


def fidelity_table(groups: pd.DataFrame, cpus: Mapping[str, str | None] | None = None) -> Table | None:
    """Measured vs predicted mini-epoch time per (experiment, hardware profile, CPU, resolution, B, samples), pooled
    over runs; ``cpus`` maps a run_dir to the CPU it ran on (measured seconds of different CPUs are never pooled)."""
    cpus = cpus or {}
    parts = []
    for _, g in groups.iterrows():
        for run_dir in g["run_dirs"]:
            times = mini_epoch_times(run_dir)
            if not times.empty:
                cpu = cpus.get(run_dir)
                parts.append(times.assign(experiment=g["experiment"], hardware=g["hardware"],
                                          cpu=cpu if isinstance(cpu, str) and cpu else "not recorded"))
    if not parts:
        return None
    keys = ["experiment", "hardware", "cpu", "resolution", "small", "batch_size", "samples"]
    grouped = pd.concat(parts).groupby(keys, sort=True)
    data = grouped["measured_s"].agg(["mean", "std", "count"]).rename(
        columns={"mean": "measured_s_mean", "std": "measured_s_std", "count": "mini_epochs"})
    data["predicted_s"] = grouped["predicted_s"].first()
    data["error_pct"] = (data["predicted_s"] / data["measured_s_mean"] - 1.0) * 100.0
    cpu = grouped["cpu_s"].agg(["mean", "std"])
    has_cpu = cpu["mean"].notna().any()
    if has_cpu:
        data["cpu_s_mean"], data["cpu_s_std"] = cpu["mean"], cpu["std"]
        data["cpu_error_pct"] = (data["predicted_s"] / data["cpu_s_mean"] - 1.0) * 100.0
    data = data.reset_index()
    display = pd.DataFrame({
        "experiment": data["experiment"], "hardware": data["hardware"], "CPU": data["cpu"],
        "res": data["resolution"],
        "worker": data["small"].map({True: "small", False: "large"}), "B": data["batch_size"],
        "samples": data["samples"], "mini-epochs": data["mini_epochs"],
        "measured (s)": [mean_std(m, s, None) for m, s in zip(data["measured_s_mean"], data["measured_s_std"])],
        "predicted (s)": data["predicted_s"].map(lambda v: num(v, significant(v))),
        "error (%)": data["error_pct"].map(lambda v: num(v, 1, signed=True)),
    })
    display = display.rename(columns={"predicted (s)": "modelled (s)"})
    if has_cpu:
        display.insert(display.columns.get_loc("modelled (s)"), "measured CPU (s)",
                       [mean_std(m, s, None) for m, s in zip(data["cpu_s_mean"], data["cpu_s_std"])])
        display["error vs CPU (%)"] = data["cpu_error_pct"].map(lambda v: num(v, 1, signed=True))
    notes = ["Measured: the wall seconds each mini-epoch trained (metrics.csv `seconds`; in older records the step "
             "of the cumulative compute_time), mean ± s.d. over the mini-epochs of all runs" +
             (", and its process CPU seconds (`cpu_seconds`)" if has_cpu else "") + "; modelled: the plan's Eq. 2 "
             "time for that worker (t(B) × steps). The error is modelled/measured - 1; a large one means the "
             "hardware profile does not describe the machine and model that ran under the sweep's conditions "
             "(threads per run, runs in parallel): calibrate it with `python -m dbsl.calibrate` under them. Runs on "
             "different CPUs (summary.json environment.cpu) are kept apart."]
    return Table("time_model_fidelity", "Time-model fidelity: mini-epoch time, measured vs modelled (Table 4 layout)",
                 data, display, notes)


BATCH_TIME_COLUMNS = ("resolution", "batch_size", "seconds")  # calibration: measured seconds per batch
VALIDATION_COLUMNS = ("resolution", "batch_size", "predicted_s", "measured_s")  # calibration: Table 4 mini-epochs


def load_measurements(paths: Sequence[Path], columns: Sequence[str]) -> tuple[pd.DataFrame, List[str]]:
    """The numeric ``columns`` of calibration CSVs (profile = the file's folder); unreadable files are named."""
    frames, problems = [], []
    for path in paths:
        try:
            raw = pd.read_csv(path)
            frame = raw[list(columns)].apply(pd.to_numeric, errors="coerce")
        except (OSError, ValueError, KeyError, pd.errors.ParserError) as err:
            problems.append(f"{path}: unreadable calibration file ({type(err).__name__}); skipped")
            continue
        for extra in ("role", "data", "steps"):
            if extra in raw:
                frame[extra] = raw[extra]
        frame = frame.dropna(subset=list(columns))
        if frame.empty:
            problems.append(f"{path}: no numeric rows; skipped")
            continue
        frames.append(frame.assign(profile=path.parent.name, file=str(path)))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), problems


def validation_table(measured: pd.DataFrame) -> Table | None:
    """The calibration's timed mini-epochs against the profile's prediction (the paper's Table 4)."""
    if measured.empty:
        return None
    data = measured.assign(error_pct=(measured["predicted_s"] / measured["measured_s"] - 1.0) * 100.0)
    data = data.sort_values(["profile", "resolution", "batch_size"]).reset_index(drop=True)
    display = pd.DataFrame({
        "profile": data["profile"], "res": data["resolution"].astype(int),
        "worker": data["role"] if "role" in data else "", "B": data["batch_size"].astype(int),
        "d": data["data"] if "data" in data else "",
        "measured (s)": data["measured_s"].map(lambda v: num(v, significant(v))),
        "predicted (s)": data["predicted_s"].map(lambda v: num(v, significant(v))),
        "error (%)": data["error_pct"].map(lambda v: num(v, 1, signed=True)),
    })
    notes = ["From the calibration's validation.csv: whole mini-epochs timed on this machine against the "
             "profile's Eq. 2 prediction; the paper reports -2.6 % to +3.5 % on its GTX 1080."]
    return Table("time_model_validation", "Time-model validation: calibrated mini-epochs (Table 4 layout)", data,
                 display, notes)


def calibration_fits(measured: pd.DataFrame) -> pd.DataFrame:
    """The linear fit t(B) = a*B + b (Eq. 2) per (profile, file, resolution) and its worst relative error."""
    rows = []
    for (profile, file, res), part in measured.groupby(["profile", "file", "resolution"], sort=True):
        if part["batch_size"].nunique() < 2:
            continue
        a, b, r2 = fit_linear(part["batch_size"], part["seconds"])
        err = (a * part["batch_size"] + b) / part["seconds"] - 1.0
        rows.append({"profile": profile, "file": file, "resolution": int(res), "points": len(part),
                     "batch_min": int(part["batch_size"].min()), "batch_max": int(part["batch_size"].max()),
                     "a": a, "b": b, "r2": r2, "max_abs_error_pct": float(np.abs(err).max() * 100.0)})
    return pd.DataFrame(rows)


def calibration_table(measured: pd.DataFrame) -> Table | None:
    """The linear fit of every calibration profile and resolution, with its worst relative error."""
    data = calibration_fits(measured) if not measured.empty else pd.DataFrame()
    if data.empty:
        return None
    display = pd.DataFrame({
        "profile": data["profile"], "res": data["resolution"], "points": data["points"],
        "batch sizes": data["batch_min"].astype(str) + "-" + data["batch_max"].astype(str),
        "a (s/sample)": data["a"].map(lambda v: f"{v:.4g}"), "b (s/batch)": data["b"].map(lambda v: f"{v:.4g}"),
        "R²": data["r2"].map(lambda v: num(v, 4)),
        "max |error| (%)": data["max_abs_error_pct"].map(lambda v: num(v, 1)),
    })
    notes = ["A negative b or a poor R² means the line of Eq. 2 does not fit: use a measured-table time model "
             "(hardware.kind=table)."]
    return Table("time_model_calibration", "Time-model fit to calibration measurements (t(B) = a·B + b)",
                 data, display, notes)
