"""The report generator on records of real smoke runs: tables against values computed here from the summaries,
failed / incomplete / malformed records listed and left out, the paper's numbers and derived parameters."""
from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dbsl.identity import run_identity
from dbsl.record import RunRecord
from dbsl.cli.report import main
from dbsl.report.paper import paper_results
from dbsl.one_run import execute

# 8 commits on 512 synthetic images at width 2; one LR stage with the CPL cycle 8 -> 16 px; k as in Table 8
FAST = ["experiment=smoke", "model.width=2", "dataset.synthetic_train=512", "dataset.synthetic_test=64",
        "schedule.epochs=2", "optim.lr_milestones=[]", "schedule.cycle_ends=[1,2]", "dbsl.extra_time_ratio=1.05",
        "train.eval_every=2", "train.threads=1", "logger.progress=false"]
SCHEMES, SEEDS = ("baseline", "hybrid"), (0, 1)
EXPERIMENT = "smoke / synthetic"
CALIBRATION = {8: (0.0002, 0.004), 16: (0.0006, 0.005)}  # (a, b) of the synthetic calibration measurements


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from dbsl.compose import compose_config

    root = tmp_path_factory.mktemp("report") / "results"
    threads = torch.get_num_threads()
    completed = {}
    try:
        for scheme in SCHEMES:
            for seed in SEEDS:
                overrides = FAST + [f"scheme={scheme}", f"seed={seed}"]
                cfg = compose_config(overrides + [f"output_dir='{root}/sweeps/s/scheme={scheme},seed={seed}'"])
                completed[scheme, seed] = Path(execute(cfg, overrides)["run_dir"])
        # a run that raised: it resumes from a checkpoint that lacks the simulation's state (taken before commit 0,
        # so that metrics.csv need hold no rows)
        failed = root / "runs" / "failed"
        cfg = compose_config(FAST + ["scheme=hybrid", "seed=2", f"output_dir={failed}"])
        RunRecord(failed).write_summary({"status": "running"})
        identity = run_identity(OmegaConf.to_container(OmegaConf.structured(cfg)))  # it is this run's checkpoint
        RunRecord(failed).save_checkpoint({"executor": "simulated", "commit": -1, "identity": identity})
        with pytest.raises(KeyError):
            execute(cfg, ["scheme=hybrid", "seed=2"])
    finally:
        torch.set_num_threads(threads)
    # what a killed run leaves: the summary written at its start (status running) and the first metrics rows
    partial = root / "runs" / "partial"
    shutil.copytree(completed["baseline", 0], partial)
    started = json.loads((partial / "summary.json").read_text())
    for key in ("best", "final", "modelled_time", "wall_time", "compute_time", "eval_time", "finished"):
        started.pop(key)
    RunRecord(partial).write_summary({**started, "status": "running", "seed": 3})
    lines = (partial / "metrics.csv").read_text().splitlines(keepends=True)
    (partial / "metrics.csv").write_text("".join(lines[:4]))
    # malformed records
    (root / "runs" / "torn").mkdir(parents=True)
    (root / "runs" / "torn" / "summary.json").write_text('{"status": "completed", "scheme": "hyb')
    (root / "runs" / "lacking").mkdir(parents=True)
    (root / "runs" / "lacking" / "summary.json").write_text('{"status": "completed", "scheme": "hybrid"}')
    # calibration measurements (seconds per batch on a known line, +-1 %)
    calib = root / "calibration" / "testbox"
    calib.mkdir(parents=True)
    with open(calib / "batch_times.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["resolution", "batch_size", "seconds"])
        for res, (a, b) in CALIBRATION.items():
            for i, batch in enumerate(range(8, 136, 16)):
                writer.writerow([res, batch, (a * batch + b) * (1 + 0.01 * (-1) ** i)])
    # the calibration's Table 4 check: timed mini-epochs against the profile's prediction
    with open(calib / "validation.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["resolution", "batch_size", "data", "steps", "predicted_s", "measured_s", "rel_error", "role"])
        writer.writerow([16, 32, 12800, 400, 8.0, 8.2, -0.0244, "large"])
        writer.writerow([16, 9, 10620, 1180, 9.0, 8.8, 0.0227, "small"])
    out = root.parent / "report"
    (out / "stale").mkdir(parents=True)  # a previous report's leftovers (its marker lists them) are replaced
    (out / "stale" / "old.csv").write_text("x\n")
    (out / ".dbsl-report.json").write_text('{"files": ["stale/old.csv"]}')
    assert main([str(root), "--out", str(out)]) == 0
    return {"root": root, "out": out, "completed": completed, "failed": failed, "partial": partial}


def summaries(built, scheme):
    return [json.loads((built["completed"][scheme, s] / "summary.json").read_text()) for s in SEEDS]


def table(built, name):
    return pd.read_csv(built["out"] / "tables" / f"{name}.csv")


def accuracy_row(built, scheme):
    data = table(built, "accuracy_time_smoke_synthetic")
    rows = data[data["scheme"] == scheme]
    assert len(rows) == 1
    return rows.iloc[0]


def test_accuracy_table_is_the_mean_over_seeds(built):
    data = table(built, "accuracy_time_smoke_synthetic")
    assert sorted(data["scheme"]) == ["baseline", "hybrid"] and (data["experiment"] == EXPERIMENT).all()
    means = {}
    for scheme in SCHEMES:
        row, runs = accuracy_row(built, scheme), summaries(built, scheme)
        assert row["runs"] == 2 and row["seeds"] == "0,1"
        values = {"best_top1_pct": [100 * r["best"]["test_top1"] for r in runs],
                  "final_top1_pct": [100 * r["final"]["test_top1"] for r in runs],
                  "best_loss": [r["best"]["test_loss"] for r in runs],
                  "modelled_time_s": [r["modelled_time"] for r in runs], "wall_time_s": [r["wall_time"] for r in runs]}
        for column, vals in values.items():
            assert row[f"{column}_mean"] == pytest.approx(statistics.mean(vals)), column
            assert row[f"{column}_std"] == pytest.approx(statistics.stdev(vals), abs=1e-9), column
        means[scheme] = {c: statistics.mean(v) for c, v in values.items()}
    hybrid, base = accuracy_row(built, "hybrid"), means["baseline"]
    assert hybrid["num_small"] == 2 and hybrid["extra_time_ratio"] == 1.05
    assert hybrid["delta_best_top1_pp"] == pytest.approx(means["hybrid"]["best_top1_pct"] - base["best_top1_pct"])
    assert hybrid["delta_final_top1_pp"] == pytest.approx(means["hybrid"]["final_top1_pct"] - base["final_top1_pct"])
    # the modelled clock is the same on every machine: the ratio of the means
    assert hybrid["delta_modelled_time_pct"] == pytest.approx(
        100 * (means["hybrid"]["modelled_time_s"] / base["modelled_time_s"] - 1))
    # wall seconds are the machine's: paired by seed (both seeds ran on this CPU), the mean of the per-seed ratios
    walls = {scheme: {r["seed"]: r["wall_time"] for r in summaries(built, scheme)} for scheme in SCHEMES}
    ratios = [walls["hybrid"][s] / walls["baseline"][s] - 1 for s in (0, 1)]
    assert hybrid["delta_wall_time_pct"] == pytest.approx(100 * statistics.mean(ratios))
    assert accuracy_row(built, "baseline")["delta_best_top1_pp"] == 0
    md = (built["out"] / "tables" / "accuracy_time_smoke_synthetic.md").read_text()
    best = [100 * r["best"]["test_top1"] for r in summaries(built, "hybrid")]
    assert f"{statistics.mean(best):.2f} ± {statistics.stdev(best):.2f}" in md


def test_failed_incomplete_and_malformed_runs_are_listed_not_averaged(built):
    runs = table(built, "runs").set_index("run_dir")
    root = built["root"]
    failed = runs.loc[str(built["failed"])]
    assert failed["status"] == "failed" and not failed["included"] and "KeyError" in failed["note"]
    partial = runs.loc[str(built["partial"])]
    assert partial["status"] == "running" and not partial["included"]
    assert "incomplete: 3 of 8 commits" in partial["note"]
    torn, lacking = runs.loc[str(root / "runs" / "torn")], runs.loc[str(root / "runs" / "lacking")]
    assert torn["status"] == "malformed" and "not valid JSON" in torn["note"]
    assert lacking["status"] == "malformed" and "lacks" in lacking["note"] and "best" in lacking["note"]
    assert runs["included"].sum() == 4 and len(runs) == 8
    # the failed hybrid seed 2 and the incomplete baseline seed 3 belong to the groups but are not in their numbers
    assert accuracy_row(built, "hybrid")["seeds"] == "0,1" and accuracy_row(built, "baseline")["seeds"] == "0,1"
    readme = (built["out"] / "README.md").read_text()
    assert "1 failed, 1 incomplete, 0 interrupted, 2 malformed" in readme
    for path in (built["failed"], built["partial"], root / "runs" / "torn"):
        assert str(path) in readme


def test_training_parameters_follow_eq8(built):
    ref = paper_results()
    table2 = table(built, "params_paper_table2").set_index(["extra_time_ratio", "num_small"])
    for _, row in ref[(ref["table"] == 3) & (ref["update_factor"] == "linear")].iterrows():
        derived = table2.loc[(row["extra_time_ratio"], row["num_small"])]
        assert derived["data_small"] == row["data_small"]  # Table 3's published d_S ...
        assert derived["data_ratio"] == pytest.approx(row["update_factor_value"], abs=5e-4)  # ... and d_S/d_L
    # Table 6 (CIFAR-100, k=1.05), Eq. 8 worked by hand with the GTX 1080 coefficients (paper.md section 4):
    # d_L = 1.05 * 50000 / 4 = 13125; d_S = (50000 - (4 - n_S) * 13125) / n_S = 10625, 11875, 12291.67 -> 12292, 12500;
    # per-sample time at B_L: 24 px a + b/600 = 0.000377329905, 32 px a + b/560 = 0.000533425375;
    # B_S = b / ((a + b/B_L) * d_L/d_S - a), e.g. n_S = 1 at 24 px: 0.000377329905 * 1.235294118 = 0.000466113412,
    # minus a = 0.000113431563, 0.014788833468 / 0.000113431563 = 130.38 -> 130; at 32 px 101.51 -> 102;
    # n_S = 3: 294.49 -> 294 and 243.39 -> 243; n_S = 4 (d_L/d_S = 1.05): 339.86 -> 340 and 285.75 -> 286
    hand = {1: (10625, 130, 102), 2: (11875, 230, 185), 3: (12292, 294, 243), 4: (12500, 340, 286)}
    table6 = table(built, "params_paper_table6_cifar100").set_index("num_small")
    for n_small, (small, bs24, bs32) in hand.items():
        assert table6.loc[n_small, "batch_small_24"] == bs24 and table6.loc[n_small, "batch_small_32"] == bs32
        assert table6.loc[n_small, "data_small"] == small and table6.loc[n_small, "data_large"] == 13125
    runs = table(built, "params_smoke_synthetic")
    assert list(runs["num_small"]) == [1, 2, 3, 4] and set(runs["extra_time_ratio"]) == {1.05}
    plan = json.loads((built["completed"]["hybrid", 0] / "plan.json").read_text())
    two = runs[runs["num_small"] == 2].iloc[0]
    assert two["data_small"] == plan["data_small"] and two["data_large"] == plan["data_large"]
    assert {p["resolution"]: p["batch_small"] for p in plan["phases"]} == {8: two["batch_small_8"],
                                                                            16: two["batch_small_16"]}


def test_paper_reference_is_transcribed_consistently():
    ref = paper_results()
    assert ref.groupby("table").size().to_dict() == {3: 9, 5: 9, 8: 10, 10: 10}
    assert ((ref["num_small"] + ref["num_large"]) == 4).all()
    assert set(ref["metric"]) == {"best", "final"} and set(ref["scheme"]) == {"dbsl", "hybrid"}

    def top1(**where):
        rows = ref[np.logical_and.reduce([ref[k] == v for k, v in where.items()])]
        assert len(rows) == 1, where
        return rows["test_top1"].iloc[0]

    # every published change is top-1 minus the table's own reference row (to the published rounding)
    for _, r in ref.dropna(subset=["top1_change"]).iterrows():
        reference = {3: lambda: top1(table=3, num_small=r["num_small"], update_factor="none"),
                     5: lambda: top1(table=5, num_small=0), 8: lambda: top1(table=8, scheme="dbsl", num_small=0),
                     10: lambda: top1(table=10, scheme="hybrid", num_small=0)}[r["table"]]()
        assert r["test_top1"] - reference == pytest.approx(r["top1_change"], abs=0.11), r.to_dict()
    # the headline of the paper's text: hybrid n_S=0 takes 10.1 % less time than DBL n_S=0 on CIFAR-100
    t8 = ref[ref["table"] == 8].set_index(["scheme", "num_small"])["time_s"]
    assert 100 * (1 - t8["hybrid", 0] / t8["dbsl", 0]) == pytest.approx(10.1, abs=0.05)


def test_paper_comparison_puts_our_changes_beside_the_published(built):
    data = table(built, "paper_table8").set_index(["scheme", "num_small"])
    for scheme, paper_scheme, n_small in (("baseline", "dbsl", 0), ("hybrid", "hybrid", 2)):
        row, ours = data.loc[(paper_scheme, n_small)], accuracy_row(built, scheme)
        assert row["experiment"] == EXPERIMENT and row["runs"] == 2
        assert row["top1_pct"] == pytest.approx(ours["best_top1_pct_mean"])  # Table 8 reports the best top-1
        # beside the paper's loss: cross-entropy plus the L2 term at the best commit (Keras's evaluate), as recorded
        best = [s["best"] for s in summaries(built, scheme)]
        assert row["loss_l2"] == pytest.approx(statistics.mean(b["test_loss_l2"] for b in best))
        assert row["loss"] == pytest.approx(statistics.mean(b["test_loss"] for b in best))
        assert all(b["test_loss_l2"] > b["test_loss"] for b in best)  # the smoke preset keeps kernel_l2 = 1e-4
        assert row["delta_top1_pp"] == pytest.approx(ours["delta_best_top1_pp"])
        assert math.isnan(row["top1_difference_pp"])  # synthetic data is a scale model: no absolute difference
    hybrid = data.loc[("hybrid", 2)]
    assert hybrid["paper_delta_top1_pp"] == pytest.approx(71.0 - 68.0)
    assert hybrid["delta_top1_difference_pp"] == pytest.approx(hybrid["delta_top1_pp"] - 3.0)
    assert pd.isna(data.loc[("dbsl", 3), "experiment"])  # not run: left empty
    header = next(line for line in (built["out"] / "tables" / "paper_table8.md").read_text().splitlines()
                  if line.startswith("| scheme"))
    assert "| paper loss | ours: loss (CE + L2) | paper top-1 (%) |" in header
    table5 = table(built, "paper_table5")  # COMPSAC merge rule: our journal-rule runs match none of it
    assert table5["experiment"].isna().all() and len(table5) == 9


def test_time_model_tables(built):
    fidelity = table(built, "time_model_fidelity")
    expected = {}
    for run_dir in built["completed"].values():
        metrics = pd.read_csv(run_dir / "metrics.csv")
        phases = json.loads((run_dir / "plan.json").read_text())["phases"]
        seconds = metrics["compute_time"].diff().fillna(metrics["compute_time"])
        for (_, row), took in zip(metrics.iterrows(), seconds):
            key = (int(row["resolution"]), bool(row["small"]), int(row["batch_size"]), int(row["samples"]))
            predicted = phases[int(row["phase"])]["time_small" if row["small"] else "time_large"]
            expected.setdefault(key, (predicted, []))[1].append(took)
    assert len(fidelity) == len(expected)
    for _, row in fidelity.iterrows():
        predicted, took = expected[(row["resolution"], row["small"], row["batch_size"], row["samples"])]
        assert row["mini_epochs"] == len(took) and row["measured_s_mean"] == pytest.approx(statistics.mean(took))
        assert row["predicted_s"] == pytest.approx(predicted)
        assert row["error_pct"] == pytest.approx(100 * (predicted / statistics.mean(took) - 1))
    fits = table(built, "time_model_calibration").set_index("resolution")
    measured = pd.read_csv(built["root"] / "calibration" / "testbox" / "batch_times.csv")
    for res, (a, b) in CALIBRATION.items():
        part = measured[measured["resolution"] == res]
        slope, intercept = np.polyfit(part["batch_size"], part["seconds"], 1)
        assert fits.loc[res, "a"] == pytest.approx(slope) and fits.loc[res, "b"] == pytest.approx(intercept)
        assert fits.loc[res, "a"] == pytest.approx(a, rel=0.05) and fits.loc[res, "profile"] == "testbox"
    assert (built["out"] / "figures" / "time_model_testbox.png").exists()
    validation = table(built, "time_model_validation")
    assert list(validation["role"]) == ["small", "large"] and list(validation["batch_size"]) == [9, 32]
    assert validation["error_pct"].tolist() == pytest.approx([100 * (9.0 / 8.8 - 1), 100 * (8.0 / 8.2 - 1)])


def test_pages_link_tables_and_figures(built):
    out = built["out"]
    assert not (out / "stale").exists()
    readme, page = (out / "README.md").read_text(), (out / "index.html").read_text()
    figures = sorted(p.relative_to(out).as_posix() for p in (out / "figures").glob("*.png"))
    assert {f"figures/{n}_smoke_synthetic.png" for n in ("curves", "pareto", "schedule", "realised_schedule",
                                                          "claims")} <= set(figures)
    for figure in figures:
        assert (out / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({figure})" in readme and f'src="{figure}"' in page
    for name in ("accuracy_time_smoke_synthetic", "paper_table8", "params_paper_table6_imagenet", "runs",
                 "per_seed", "protocol_smoke_synthetic", "environment"):
        assert f"(tables/{name}.csv)" in readme and f'href="tables/{name}.csv"' in page
        assert "\\begin{tabular}" in (out / "tables" / f"{name}.tex").read_text()
    assert "| scheme | n_S | k | f |" in readme and page.count("<table>") == readme.count("\n|---")


def test_no_runs_or_no_folder_is_a_clear_message(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "r")]) == 2
    assert "no run records (summary.json) under" in capsys.readouterr().err
    assert main([str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 2
    assert "nowhere: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_claims_compare_each_seed_with_its_baseline(built):
    from scipy import stats

    claims = table(built, "claims_smoke_synthetic")
    assert list(claims["scheme"]) == ["hybrid"]  # the baseline is the reference, not a claim
    row = claims.iloc[0]
    hybrid = {json.loads((d / "summary.json").read_text())["seed"]: json.loads((d / "summary.json").read_text())
              for (s, _), d in built["completed"].items() if s == "hybrid"}
    base = {seed: json.loads((built["completed"]["baseline", seed] / "summary.json").read_text()) for seed in SEEDS}
    diffs = [100 * (hybrid[s]["best"]["test_top1"] - base[s]["best"]["test_top1"]) for s in SEEDS]
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    assert row["seeds_paired"] == 2 and row["delta_best_top1_pp"] == pytest.approx(statistics.mean(diffs))
    assert row["delta_best_top1_low"] == pytest.approx(statistics.mean(diffs) - half)
    assert row["delta_best_top1_high"] == pytest.approx(statistics.mean(diffs) + half)
    expected = ("shown" if row["delta_best_top1_low"] > 0 else "opposite" if row["delta_best_top1_high"] < 0
                else "not shown (no resolved change)")
    assert row["accuracy_verdict"] == expected
    # time is judged on the measured clock the records keep (each worker's mini-epochs at their measured seconds)
    ratios = [100 * (hybrid[s]["measured_time"] / base[s]["measured_time"] - 1) for s in SEEDS]
    assert row["clock"] == "measured" and row["delta_time_pct"] == pytest.approx(statistics.mean(ratios))
    modelled = [100 * (hybrid[s]["modelled_time"] / base[s]["modelled_time"] - 1) for s in SEEDS]
    assert row["delta_modelled_time_pct"] == pytest.approx(statistics.mean(modelled))  # shown beside
    # a measured clock is noisy: the verdict follows the interval (the claim is "lower")
    assert row["time_verdict"] == ("shown" if row["delta_time_high"] < 0 else "opposite"
                                   if row["delta_time_low"] > 0 else "not shown (no resolved change)")
    assert row["paper_delta_top1_pp"] == pytest.approx(71.0 - 68.0) and row["paper_table"] == 8
    readme = (built["out"] / "README.md").read_text()
    assert "The paper's claims against these runs" in readme and "**hybrid** (n_S = 2)" in readme


def test_claim_verdicts_follow_the_interval():
    from dbsl.report.claims import accuracy_verdict, paired_change, time_verdict

    seeds = pd.Index([0, 1, 2])
    base = pd.Series([80.0, 81.0, 79.0], index=seeds)
    up = paired_change(pd.Series([81.0, 82.1, 79.9], index=seeds), base)  # +1.0, +1.1, +0.9: resolved
    noisy = paired_change(pd.Series([82.0, 80.0, 79.5], index=seeds), base)  # +2, -1, +0.5: holds zero
    down = paired_change(pd.Series([78.0, 79.2, 76.9], index=seeds), base)
    assert up.low > 0 and up.mean == pytest.approx(1.0) and up.pairs == 3
    assert noisy.low < 0 < noisy.high
    assert [accuracy_verdict("higher", c) for c in (up, noisy, down)] == [
        "shown", "not shown (no resolved change)", "opposite"]
    assert accuracy_verdict("not lower", noisy).startswith("not contradicted")
    assert accuracy_verdict("not lower", up) == "shown (higher)"
    assert accuracy_verdict("not lower", down).startswith("opposite")
    same_time = pd.Series([100.0, 100.0, 100.0], index=seeds)
    over = paired_change(pd.Series([106.0] * 3, index=seeds), same_time, relative=True)
    within = paired_change(pd.Series([104.9] * 3, index=seeds), same_time, relative=True)
    assert over.low == over.high == pytest.approx(6.0)
    assert time_verdict("within k", within, 1.05) == "shown"
    assert time_verdict("within k", over, 1.05).startswith("opposite")
    # +5.3 % in every seed: inside the exploratory slack (+0.5 % for the rounding of B_S), outside a strict +5 % budget
    rounded = paired_change(pd.Series([105.3] * 3, index=seeds), same_time, relative=True)
    assert time_verdict("within k", rounded, 1.05) == "shown"
    assert time_verdict("within k", rounded, 1.05, slack_pct=0.0).startswith("opposite")
    assert time_verdict("lower", paired_change(pd.Series([90.0] * 3, index=seeds), same_time, True), 1.0) == "shown"
    # unpaired (different seeds): Welch's interval; one run a side: no interval
    welch = paired_change(pd.Series([81.0, 82.1, 79.9], index=[5, 6, 7]), base)
    assert welch.pairs == 0 and welch.low < welch.mean < welch.high
    single = paired_change(pd.Series([81.0], index=[5]), pd.Series([80.0], index=[6]))
    assert math.isnan(single.low) and accuracy_verdict("higher", single) == "not tested (one seed)"


def test_overview_states_the_command_that_rebuilds_the_report(built, tmp_path, capsys):
    readme = (built["out"] / "README.md").read_text()
    assert f"Rebuild it with `python -m dbsl.report {built['root']} --out {built['out']}`" in readme
    notes = tmp_path / "notes.md"
    notes.write_text("First paragraph of the reading.\n\nSecond one,\non two lines.\n\n## Caveats\n\nA third.\n")
    again = tmp_path / "again"
    assert main([str(built["root"]), "--out", str(again), "--notes", str(notes)]) == 0
    rebuilt = (again / "README.md").read_text()
    assert f"Rebuild it with `python -m dbsl.report {built['root']} --out {again} --notes {notes}`" in rebuilt
    assert "## Reading the results\n\nFirst paragraph of the reading.\n\nSecond one,\non two lines.\n" in rebuilt
    # the notes' own headings stay inside their section: '## Caveats' two levels down
    assert "\n#### Caveats\n\nA third.\n" in rebuilt and "\n## Caveats" not in rebuilt
    for csv_file in sorted((built["out"] / "tables").glob("*.csv")):  # the same records give the same numbers
        assert (again / "tables" / csv_file.name).read_text() == csv_file.read_text(), csv_file.name
    assert main([str(built["root"]), "--out", str(tmp_path / "none"), "--notes", str(tmp_path / "gone.md")]) == 2
    assert f"--notes {tmp_path / 'gone.md'}: cannot read it" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
