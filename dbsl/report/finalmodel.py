"""The post-hoc checks of the runs' final models (``posthoc.json``, written by ``python -m dbsl.posthoc`` from each
run's ``final.pt``): per group, the final model's test top-1 as recorded and after BatchNorm recalibration on the
training images, and its generalisation gap (train against test, eval mode, no augmentation); per compared pair,
how recalibration moves the change against the baseline (the robustness study's arm D), paired by seed."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from ..record import POSTHOC
from . import stats
from .render import Table, num


def read_checks(run_dirs) -> pd.DataFrame:
    """One row per run with a readable posthoc.json: the measurements in per cent (top-1) and as they are (loss)."""
    rows = []
    for run_dir in run_dirs:
        try:
            data = json.loads((Path(run_dir) / POSTHOC).read_text())
            rows.append({"run_dir": run_dir, "test_top1_pct": 100 * data["test"]["top1"],
                         "recal_top1_pct": 100 * data["bn_recalibrated"]["top1"],
                         "train_top1_pct": 100 * data["train"]["top1"], "test_loss": data["test"]["loss"],
                         "train_loss": data["train"]["loss"], "gap_pp": data["gap"]["top1_pp"]})
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return pd.DataFrame(rows)


def final_model_tables(runs: pd.DataFrame, groups: pd.DataFrame) -> list[Table]:
    """The per-group table and the recalibration contrasts; none when no run has post-hoc checks."""
    included = runs[runs["included"]]
    checks = read_checks(included["run_dir"])
    if checks.empty or groups.empty:
        return []
    checks = checks.merge(included[["run_dir", "group", "seed"]], on="run_dir")
    rows = []
    for _, g in groups.iterrows():
        mine = checks[checks["group"] == g["group"]]
        if mine.empty:
            continue
        rows.append({"experiment": g["experiment"], "label": g["label"], "runs": len(mine),
                     **{f"{c}_mean": mine[c].mean() for c in ("test_top1_pct", "recal_top1_pct", "train_top1_pct",
                                                               "test_loss", "train_loss", "gap_pp")},
                     "recal_change_pp": (mine["recal_top1_pct"] - mine["test_top1_pct"]).mean()})
    data = pd.DataFrame(rows)
    display = pd.DataFrame({
        "experiment": data["experiment"], "group": data["label"], "runs": data["runs"],
        "final model, test top-1 (%)": data["test_top1_pct_mean"].map(lambda v: num(v, 2)),
        "BN recalibrated (%)": data["recal_top1_pct_mean"].map(lambda v: num(v, 2)),
        "change (pp)": data["recal_change_pp"].map(lambda v: num(v, 2, signed=True)),
        "train top-1 (%)": data["train_top1_pct_mean"].map(lambda v: num(v, 2)),
        "gap (pp)": data["gap_pp_mean"].map(lambda v: num(v, 2)),
        "train loss": data["train_loss_mean"].map(lambda v: num(v, 3)),
        "test loss": data["test_loss_mean"].map(lambda v: num(v, 3)),
    })
    notes = ["Means over the group's runs with post-hoc checks (`python -m dbsl.posthoc`, on each run's final.pt). "
             "Test top-1: the final global model on the full test set (BatchNorm with the merged running statistics, "
             "as recorded); BN recalibrated: the same model after its BatchNorm statistics are recomputed as a "
             "cumulative average over one pass of the run's training images (no augmentation, the last phase's "
             "resolution and B_L); train: the final model on the training images in eval mode, no augmentation; "
             "gap: train top-1 minus test top-1."]
    tables = [Table("final_models", "The final models: BatchNorm recalibration and the generalisation gap", data,
                    display, notes)]
    contrast = recalibration_contrasts(checks, groups)
    if contrast is not None:
        tables.append(contrast)
    return tables


def recalibration_contrasts(checks: pd.DataFrame, groups: pd.DataFrame) -> Table | None:
    """Per group with a baseline: its change against the baseline on the final model as recorded and after BN
    recalibration, and the per-seed difference of the two (does recalibration move the contrast?)."""
    rows = []
    for _, g in groups.iterrows():
        if pd.isna(g["baseline_group"]) or g["group"] == g["baseline_group"]:
            continue
        ours = checks[checks["group"] == g["group"]].set_index("seed")
        base = checks[checks["group"] == g["baseline_group"]].set_index("seed")
        common = ours.index.intersection(base.index)
        if len(common) < 2:
            continue
        recorded = ours.loc[common, "test_top1_pct"] - base.loc[common, "test_top1_pct"]
        recal = ours.loc[common, "recal_top1_pct"] - base.loc[common, "recal_top1_pct"]
        moved = stats.paired((recal - recorded).to_numpy(float), 0.95)
        rows.append({"experiment": g["experiment"], "label": g["label"], "seeds": len(common),
                     "delta_recorded_pp": recorded.mean(), "delta_recal_pp": recal.mean(), "moved_pp": moved.mean,
                     "moved_low": moved.low, "moved_high": moved.high})
    if not rows:
        return None
    data = pd.DataFrame(rows)
    display = pd.DataFrame({
        "experiment": data["experiment"], "group": data["label"], "seeds": data["seeds"],
        "Δ final model (pp)": data["delta_recorded_pp"].map(lambda v: num(v, 2, signed=True)),
        "Δ BN recalibrated (pp)": data["delta_recal_pp"].map(lambda v: num(v, 2, signed=True)),
        "moved by (pp), 95 % CI": [f"{m:+.2f} [{lo:+.2f}, {hi:+.2f}]" if not math.isnan(lo) else f"{m:+.2f}"
                                    for m, lo, hi in zip(data["moved_pp"], data["moved_low"], data["moved_high"])],
    })
    notes = ["Δ: against the baseline with the same settings, paired by seed, on the final model's test top-1 (one "
             "test, not the endpoint's window). Moved by: the per-seed difference between the two Δ, with its paired "
             "95 % interval: how much of the change the BatchNorm statistics carry."]
    return Table("final_models_recalibration", "Does BatchNorm recalibration move the change against the baseline?",
                 data, display, notes)
