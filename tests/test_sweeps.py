"""Sweeps end to end: real Hydra multiruns (joblib and basic launchers) on synthetic data, re-runs that skip finished
runs, failing runs that do not stop the others, fail-fast, the sweep summary, and the named presets in sweeps/."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from dbsl.sweep.outcomes import read_sweep_summary
from dbsl.record import find_runs, read_metric_rows, read_summary
from dbsl.sweep.presets import PresetError, expand_jobs, list_presets, load_preset, merge_overrides
from test_wandb import read_wandb_records

# 2 epochs x 4 workers = 8 commits on 256 synthetic images: about a second per run with one thread
TINY = ["experiment=smoke", "schedule.epochs=2", "optim.lr_milestones=[1]", "schedule.cycle_ends=[]",
        "dataset.synthetic_train=256", "dataset.synthetic_test=64", "train.eval_every=2", "train.threads=1"]


def hydra_multirun(monkeypatch, *args: str) -> int:
    """``python -m dbsl.run -m <args>`` inside this process (the real Hydra app, basic launcher); its exit status."""
    from hydra.core.global_hydra import GlobalHydra

    from dbsl import run
    from dbsl.sweep import outcomes

    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["dbsl.run", "-m", *args])
    try:
        run.main()
    finally:
        GlobalHydra.instance().clear()
    return outcomes.sweep_exit_code()


def outcomes_by_label(sweep_dir, *keys):
    runs = read_sweep_summary(sweep_dir)["runs"].values()
    return {tuple(o for o in r["overrides"] if o.split("=")[0] in keys): r for r in runs}


def test_multirun_2x2_in_parallel_then_rerun_skips_completed(tmp_path, monkeypatch, capsys):
    grid = ["sweep_name=grid", "scheme=dbsl,hybrid", "dbsl.num_small=1,2", *TINY, f"results_dir={tmp_path / 'results'}"]
    # two worker processes (joblib); each job records its outcome for the summary in this process
    assert hydra_multirun(monkeypatch, *grid, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2") == 0
    first = capsys.readouterr().out
    sweep_dir = tmp_path / "results" / "sweeps" / "grid"
    runs = find_runs(sweep_dir)
    assert len(runs) == 4
    summaries = [read_summary(r) for r in runs]
    assert all(s["status"] == "completed" for s in summaries)
    assert sorted((s["scheme"], s["num_small"]) for s in summaries) == [
        ("dbsl", 1), ("dbsl", 2), ("hybrid", 1), ("hybrid", 2)]
    assert all(len(read_metric_rows(r / "metrics.csv")) == 8 for r in runs)
    assert "4 completed, 0 skipped, 0 failed" in first
    finished = {r.name: read_summary(r)["finished"] for r in runs}
    logs = {r.name: (r / "run.log").read_bytes() for r in runs}
    assert all(b"epoch 2/2" in text for text in logs.values())  # Hydra's per-job log is in each record

    # one run killed before it finished (its summary still says running)
    interrupted = runs[0]
    record = json.loads((interrupted / "summary.json").read_text())
    (interrupted / "summary.json").write_text(json.dumps({**record, "status": "running"}))

    # the same sweep again (another launcher does not change the run directories): only the interrupted run trains
    assert hydra_multirun(monkeypatch, *grid) == 0
    assert "1 completed, 3 skipped, 0 failed" in capsys.readouterr().out
    assert sorted(r.name for r in find_runs(sweep_dir)) == sorted(finished)
    assert read_summary(interrupted)["status"] == "completed"
    assert {r.name: read_summary(r)["finished"] for r in runs[1:]} == {r.name: finished[r.name] for r in runs[1:]}
    # a completed record is not written to: the skip is said on the console, not appended to its run.log
    assert {r.name: (r / "run.log").read_bytes() for r in runs[1:]} == {r.name: logs[r.name] for r in runs[1:]}
    summary = read_sweep_summary(sweep_dir)
    assert [inv["completed"] for inv in summary["invocations"]] == [4, 1]
    assert [inv["skipped"] for inv in summary["invocations"]] == [0, 3]
    assert summary["runs"][interrupted.name]["status"] == "completed"


def test_fail_fast_cancels_the_runs_after_a_failure(tmp_path, monkeypatch, capsys):
    status = hydra_multirun(monkeypatch, "sweep_name=ff", "fail_fast=true", "scheme=dbsl", "dbsl.num_small=9,1",
                            *TINY, f"results_dir={tmp_path / 'results'}")
    assert status == 1
    sweep_dir = tmp_path / "results" / "sweeps" / "ff"
    by_n = outcomes_by_label(sweep_dir, "dbsl.num_small")
    assert by_n[("dbsl.num_small=9",)]["status"] == "failed"
    assert "dbsl.num_small=9" in by_n[("dbsl.num_small=9",)]["error"]
    assert by_n[("dbsl.num_small=1",)]["status"] == "cancelled"
    assert find_runs(sweep_dir) == []  # the cancelled run never started
    assert "0 completed, 0 skipped, 1 failed, 1 cancelled" in capsys.readouterr().out


def test_named_preset_with_a_failing_run_finishes_the_others_and_reports_it(tmp_path):
    preset = tmp_path / "two_grids.yaml"
    tiny = " ".join(TINY)
    preset.write_text(f"description: two grids, one run made to fail (n_S=9 > n=4)\n"
                      f"grids:\n  - scheme=dbsl dbsl.num_small=9,1 {tiny}\n  - scheme=baseline {tiny}\n")
    results = tmp_path / "results"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_ERROR_REPORTING": "false", "NETRC": str(tmp_path / "none"),
           "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config")}
    env.pop("WANDB_API_KEY", None)
    proc = subprocess.run([sys.executable, "-m", "dbsl.sweep", str(preset), f"results_dir={results}", "logger=wandb"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    sweep_dir = results / "sweeps" / "two_grids"
    statuses = {read_summary(r)["scheme"]: read_summary(r)["status"] for r in find_runs(sweep_dir)}
    assert statuses == {"dbsl": "completed", "baseline": "completed"}  # the failure stopped neither grid
    by_n = outcomes_by_label(sweep_dir, "scheme", "dbsl.num_small")
    failed = by_n[("scheme=dbsl", "dbsl.num_small=9")]
    assert failed["status"] == "failed" and "ConfigError" in failed["error"] and "ps.num_workers" in failed["error"]
    # W&B (offline here): one run per completed run, grouped by the sweep, job_type = the scheme
    for run_dir in find_runs(sweep_dir):
        (log_file,) = run_dir.glob("wandb/offline-run-*/*.wandb")
        (run,) = [r.run for r in read_wandb_records(log_file) if r.WhichOneof("record_type") == "run"]
        assert run.run_group == "two_grids" and run.job_type == read_summary(run_dir)["scheme"]
    # progress over both grids (k/N with an ETA), and every log line of a run carries its label
    assert "sweep two_grids: 3/3 runs done (2 completed, 0 skipped, 1 failed), 0 running" in proc.stderr
    assert re.search(r"sweep two_grids: [12]/3 runs done .* ETA \d+:\d\d:\d\d", proc.stderr), proc.stderr
    labelled = [line for line in (proc.stdout + proc.stderr).splitlines() if "epoch 1/" in line]
    assert labelled and all(re.search(r"\] - \[#\d+ .*scheme=(dbsl|baseline)", line) for line in labelled), labelled
    # the closing table covers both grids
    assert "sweep two_grids (all grids)" in proc.stdout
    assert "2 completed, 0 skipped, 1 failed, 0 cancelled" in proc.stdout


def test_presets_match_the_papers_tables():
    jobs = lambda name: [j for g in load_preset(name).grids for j in expand_jobs(g)]  # noqa: E731
    table8 = jobs("table8")
    assert len(table8) == 10 and all("experiment=paper_cifar100" in j for j in table8)
    assert {(j[1], j[2]) for j in table8} == {(f"scheme={s}", f"dbsl.num_small={n}") for s in ("dbsl", "hybrid")
                                              for n in range(5)}
    assert len(jobs("table10")) == 10 and all("experiment=paper_imagenet" in j for j in jobs("table10"))
    table3 = jobs("table3")
    assert len(table3) == 9 and all("dbsl.extra_time_ratio=1.1" in j for j in table3)
    assert {j[-1] for j in table3} == {f"ps.update_factor={f}" for f in ("linear", "sqrt", "none")}
    table5 = jobs("table5")  # the n_S=0 baseline once, then k x n_S
    assert len(table5) == 9 and sum("dbsl.num_small=0" in j for j in table5) == 1
    for cpu in ("table8_cpu", "table10_cpu", "table3_cpu", "table5_cpu"):
        assert len(jobs(cpu)) == len(jobs(cpu[:-4]))


def test_preset_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(PresetError, match="no sweep preset 'nope'.*sweeps/nope.yaml"):
        load_preset("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [scheme=dbsl]\n")
    with pytest.raises(PresetError, match="unknown key.*grid"):
        load_preset(str(bad))
    bad.write_text("grids: []\n")
    with pytest.raises(PresetError, match="non-empty list of override lines"):
        load_preset(str(bad))


def test_command_line_overrides_replace_the_grids_by_key():
    merged = merge_overrides(["experiment=smoke", "seed=0", "scheme=dbsl,hybrid"], ["seed=1,2", "+x=1"])
    assert merged == ["experiment=smoke", "scheme=dbsl,hybrid", "seed=1,2", "+x=1"]
    assert len(expand_jobs(merged)) == 4


def test_dry_run_prints_the_commands_without_running(tmp_path):
    from dbsl.cli.sweep import main

    assert main(["table5", "--dry-run", f"results_dir={tmp_path}"]) == 0
    assert not (tmp_path / "sweeps").exists()


def test_launcher_configs_compose():
    """hydra/launcher=local_parallel (joblib, tested above through hydra/launcher=joblib) and =slurm (submitit;
    composed here only: there is no SLURM cluster to submit to)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from dbsl.compose import register_all

    register_all()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="dbsl.conf", version_base="1.3"):
        slurm = compose(config_name="config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                        return_hydra_config=True).hydra.launcher
        local = compose(config_name="config", overrides=["hydra/launcher=local_parallel"],
                        return_hydra_config=True).hydra.launcher
    GlobalHydra.instance().clear()
    assert slurm._target_.endswith("submitit_launcher.SlurmLauncher")
    assert slurm.gpus_per_node == 1 and slurm.partition == "gpu" and slurm.timeout_min > 0
    assert local._target_.endswith("joblib_launcher.JoblibLauncher") and local.n_jobs == 2


def test_a_grid_whose_every_run_is_refused_does_not_stop_the_next_grid(tmp_path):
    """A grid's every job refused for bad input ends its multirun with status 2 (bad input); the preset still runs
    its other grids, since that input was the grid's own, and ends with 1 (a failed run)."""
    preset = tmp_path / "refused_grid.yaml"
    tiny = " ".join(TINY)
    preset.write_text("description: the first grid refused (n_S=9 > n=4), the second fine\n"
                      f"grids:\n  - scheme=dbsl dbsl.num_small=9 {tiny}\n  - scheme=baseline {tiny}\n")
    results = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "dbsl.sweep", str(preset), f"results_dir={results}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "WANDB_MODE": "disabled"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "every run of the multirun was refused: dbsl.num_small=9" in proc.stderr
    statuses = {read_summary(r)["scheme"]: read_summary(r)["status"] for r in find_runs(results / "sweeps" /
                                                                                          "refused_grid")}
    assert statuses == {"baseline": "completed"}


def test_status_shows_where_each_run_stands_without_a_test_number(tmp_path, capsys):
    """`dbsl sweep NAME --status`: one run completed, one killed after its first checkpoint, one never started; the
    table finds each at the folder Hydra gave it and says how far it got, but shows no accuracy or loss."""
    import signal
    import time

    from dbsl.cli.sweep import main
    from dbsl.sweep.presets import load_preset
    from dbsl.sweep.status import sweep_status

    # 12 epochs x 4 workers = 48 commits: long enough to be killed after its first checkpoint (commit 2)
    longer = [o for o in TINY if not o.startswith(("schedule.epochs=", "optim.lr_milestones="))]
    longer += ["schedule.epochs=12", "optim.lr_milestones=[6]"]
    preset = tmp_path / "blind.yaml"
    preset.write_text(f"description: two grids\ngrids:\n  - scheme=baseline seed=0,1 {' '.join(longer)}\n"
                      f"  - scheme=dbsl {' '.join(TINY)}\n")
    results = tmp_path / "results"
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}

    def multirun(seed, *more):  # grid 1's run of one seed, where the preset's multirun puts it
        return [sys.executable, "-m", "dbsl.run", "-m", "sweep_name=blind", "scheme=baseline", f"seed={seed}", *longer,
                f"results_dir={results}", "logger.progress=false", *more]

    done = subprocess.run(multirun(0), cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = results / "sweeps" / "blind"
    killed = subprocess.Popen(multirun(1, "checkpoint_every=2"), cwd=tmp_path, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and killed.poll() is None and not list(sweep.glob("*seed=1*/checkpoint.pt")):
        time.sleep(0.02)
    assert killed.poll() is None, "the run ended before it could be killed"
    os.killpg(killed.pid, signal.SIGKILL)  # the multirun and its job: a run stopped without a word
    killed.wait()
    [stopped] = sweep.glob("*seed=1*")
    rows = len((stopped / "metrics.csv").read_text().splitlines()) - 1

    found = sweep_status(load_preset(str(preset)), [f"results_dir={results}"])
    assert [(r["grid"], r["status"], r["commits"], r["total"], r["checkpoint"]) for r in found] == [
        (1, "completed", 48, 48, False), (1, "in progress", rows, 48, True), (2, "not started", 0, None, False)]
    assert 2 <= rows < 48 and found[1]["run"] == stopped.name and found[0]["written"] < 300

    assert main([str(preset), "--status", f"results_dir={results}"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("1/3 runs completed, 1 in progress, 1 not started"), out
    assert f"{rows}/48" in out and "48/48 (100 %)" in out
    best = read_summary(sweep / found[0]["run"])["best"]
    for number in (best["test_top1"], best["test_loss"]):  # blind: no test number of any run
        assert f"{number:.4f}" not in out and f"{100 * number:.1f}" not in out
    # a mistyped results_dir: one line naming the folder, not a table of 3 runs "not started"
    assert main([str(preset), "--status", f"results_dir={tmp_path / 'reslts'}"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {tmp_path / 'reslts' / 'sweeps' / 'blind'}: no such sweep folder"), line
