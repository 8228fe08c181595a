"""Issue 26: evaluation no scheme can steer (the final window), the one-process SGD reference (the replace merge),
the final model (final.pt) and its post-hoc checks (BatchNorm recalibration, the train-set gap), the balance check of
an endpoint, and a pre-registration of several arms. Expected values are worked out by hand in the comments, or come
from a plain training loop written here."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from dbsl.data import Pipeline, load_dataset
from dbsl.plan import Phase, Plan, build_plan
from dbsl.cli.posthoc import main as posthoc_main
from dbsl.posthoc import measure, recalibrate_batchnorm
from dbsl.ps.context import RunContext
from dbsl.ps.merge import merge_into
from dbsl.ps.server import ParameterServer, SyncPolicy
from dbsl.ps.worker import derive_seed, mini_epoch_indices
from dbsl.report.collect import group_runs, load_runs
from dbsl.report.endpoint import balance_problem, balance_warnings, endpoint, final_window
from dbsl.report.prereg import read_prereg
from dbsl.one_run import execute
from dbsl.local_training import LocalTrainer

ROOT = Path(__file__).resolve().parents[1]
FAST = ["experiment=smoke", "model.width=2", "dataset.synthetic_train=512", "dataset.synthetic_test=64",
        "train.threads=1"]  # one thread: two-thread torch on busy cores spins (OMP busy-wait)


def rows(run_dir):
    with open(Path(run_dir) / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


# -- the final window ------------------------------------------------------------------------------------------
def test_final_window_tests_every_commit_of_the_last_epochs():
    phase = Phase(0, 0, 0, 12, 0.1, 8, 0.0, 4, 0, 1, 0, 1.0, 0.0)
    plan = Plan("baseline", 100, 3, 0, 1.0, 33, 0, 1.0, 12, 0, 0.0, "test", (phase,))
    ps = ParameterServer(plan, {"w": torch.zeros(1)}, policy=SyncPolicy("ASP", eval_every=5, final_window=3))
    # 12 commits, m = 5: commits 4 and 9 ((c+1) % 5 == 0); the window of the last 3: 9, 10, 11
    assert [c for c in range(12) if ps.tested_commit([c]) is not None] == [4, 9, 10, 11]


@pytest.fixture(scope="module")
def window_runs(tmp_path_factory):
    """Baseline and DBSL, seeds 0 and 1, on the smoke preset with the last 2 of its 6 epochs tested at every commit
    and a periodic test every 4th commit; the post-hoc checks of all four; a report on the final window."""
    from dbsl.compose import compose_config
    from dbsl.cli.report import main as report

    root = tmp_path_factory.mktemp("window")
    summaries = {}
    for scheme in ("baseline", "dbsl"):
        for seed in (0, 1):
            cfg = compose_config(FAST + [f"scheme={scheme}", f"seed={seed}", "train.eval_every=4",
                                         "train.eval_final_epochs=2", f"output_dir={root / 'runs' / f'{scheme}{seed}'}"])
            summaries[scheme, seed] = execute(cfg)
    assert posthoc_main([str(root / "runs")]) == 0
    prereg = root / "prereg.md"
    prereg.write_text("---\nendpoint: final_window:2\nalpha: 0.05\ncorrection: holm\nseeds: 2\nprimary:\n"
                      "  - {scheme: dbsl, num_small: 2, test: superiority}\n---\n")
    assert report([str(root / "runs"), "--out", str(root / "report"), "--prereg", str(prereg), "--no-figures"]) == 0
    return {"root": root, "summaries": summaries}


def metrics(summary) -> pd.DataFrame:
    return pd.DataFrame(rows(summary["run_dir"])).apply(pd.to_numeric, errors="coerce")


def test_a_dbsl_runs_window_holds_every_worker_equally(window_runs):
    table = metrics(window_runs["summaries"]["dbsl", 0])
    window = final_window(table, 2)  # smoke: 6 epochs of 4 commits; the window is epochs 5-6, commits 16-23
    assert window is not None and list(window["commit"]) == list(range(16, 24))
    counts = window["worker"].value_counts()
    assert sorted(counts.index) == [1, 2, 3, 4] and counts.max() - counts.min() <= 1
    assert balance_problem(window, 4, 2) is None
    # the periodic tests alone (every 4th commit) test one worker's merge each time
    periodic = table[(table["commit"] + 1) % 4 == 0]
    assert periodic["worker"].nunique() == 1


def test_the_report_measures_whose_merge_is_tested(window_runs):
    out = window_runs["root"] / "report" / "tables"
    roles = pd.read_csv(out / "merge_roles.csv").iloc[0]
    diffs = []
    for seed in (0, 1):  # by hand: the window's tests after workers 1-2 (small) minus after workers 3-4 (large)
        w = metrics(window_runs["summaries"]["dbsl", seed])
        w = w[w["epoch"] > 4]
        diffs.append(100 * (w[w["worker"] <= 2]["test_top1"].mean() - w[w["worker"] > 2]["test_top1"].mean()))
    assert roles["runs"] == 2 and roles["small_minus_large_pp"] == pytest.approx(sum(diffs) / 2)
    steered = pd.read_csv(out / "steered_endpoint.csv").iloc[0]

    def last3(scheme, seed):  # the first study's endpoint: the mean of the last 3 tested commits
        m = metrics(window_runs["summaries"][scheme, seed]).dropna(subset=["test_top1"])
        return 100 * m.sort_values("commit")["test_top1"].iloc[-3:].mean()

    def window_mean(scheme, seed):
        m = metrics(window_runs["summaries"][scheme, seed])
        return 100 * m[m["epoch"] > 4]["test_top1"].mean()

    neutral = [window_mean("dbsl", s) - window_mean("baseline", s) for s in (0, 1)]
    old = [last3("dbsl", s) - last3("baseline", s) for s in (0, 1)]
    assert steered["delta_neutral_pp"] == pytest.approx(sum(neutral) / 2)
    assert steered["delta_steered_pp"] == pytest.approx(sum(old) / 2)
    assert steered["steered_minus_neutral_pp"] == pytest.approx((sum(old) - sum(neutral)) / 2)


def test_a_partial_window_is_no_endpoint():
    metrics = pd.DataFrame({"commit": range(8), "epoch": [1, 1, 1, 1, 2, 2, 2, 2], "worker": [1, 2, 3, 4] * 2,
                            "small": [1, 1, 0, 0] * 2,
                            "test_top1": [None, None, None, 0.5, 0.6, None, 0.7, 0.8]})
    assert final_window(metrics, 1) is None  # commit 5 of the last epoch was not tested
    metrics.loc[5, "test_top1"] = 0.9
    assert final_window(metrics, 1)["test_top1"].mean() == pytest.approx((0.6 + 0.9 + 0.7 + 0.8) / 4)


def test_balance_problem_by_hand():
    rows_ = pd.DataFrame({"worker": [2, 2, 2], "small": [1, 1, 1], "test_top1": [0.8, 0.8, 0.8]})
    # 3 evaluations, n_S/n = 2/4: 1.5 should follow a small worker's merge; 3 is 1.5 away: more than one
    assert "3 of its 3 evaluations" in balance_problem(rows_, 4, 2)
    assert balance_problem(rows_.assign(small=[1, 1, 0]), 4, 2) is None  # 2 is within one of 1.5
    assert balance_problem(rows_.assign(small=0), 4, 0) is None  # a baseline has no small workers


def test_the_balance_check_flags_the_first_studys_dbsl_and_hybrid_contrasts():
    runset = load_runs([ROOT / "results" / "sweeps" / "fmnist_study"])
    groups = group_runs(runset)
    warnings = balance_warnings(groups, endpoint(runset, "last_mean:3"))  # the first study's endpoint
    flagged = {w.split(" against ")[0] for w in warnings}
    # every DBSL evaluation followed worker 2 (small), every hybrid one worker 4 (large): both are one role only
    assert flagged == {"dbsl n_S=2", "hybrid n_S=2"}
    assert any("10 run(s) of dbsl n_S=2" in w and "(worker 2: 3)" in w for w in warnings)


# -- the one-process SGD reference ---------------------------------------------------------------------------
def test_replace_merge_keeps_the_pushed_weights():
    g = [torch.full((3,), 2.0), torch.tensor([float("inf")])]
    merge_into(g, [torch.full((3,), 8.0), torch.tensor([1.5])], "replace", 0.5)
    assert torch.equal(g[0], torch.full((3,), 8.0)) and torch.equal(g[1], torch.tensor([1.5]))


def test_one_worker_with_the_replace_merge_is_plain_sgd_bit_for_bit(compose, tmp_path):
    overrides = FAST + ["scheme=baseline", "ps.num_workers=1", "dbsl.num_small=0", "schedule.epochs=2",
                        "optim.lr_milestones=[]", "schedule.resolutions=[16]", "schedule.dropouts=[0.1]",
                        "schedule.batch_large=[64]", "schedule.cycle_ends=[]", "train.eval_every=100"]
    cfg = compose(overrides + ["ps.merge_rule=replace", f"output_dir={tmp_path / 'replace'}"])
    summary = execute(cfg)
    through_server = torch.load(Path(summary["run_dir"]) / "final.pt", weights_only=True)
    # the same two mini-epochs as a plain loop: one model, one optimizer, the worker's samples, no server
    source = load_dataset(cfg.dataset, cfg.seed)
    plan = build_plan(cfg, len(source.train))
    ctx = RunContext(cfg, plan, source, torch.device("cpu"), record=None)
    model = ctx.initial_model()
    model.set_dropout(0.1)
    trainer = LocalTrainer(model, cfg.optim, torch.device("cpu"), channels_last=cfg.train.channels_last)
    pipeline = Pipeline(source, cfg.dataset.augment, "cpu")
    for local_round in range(2):
        seed = derive_seed(cfg.seed, 1, local_round)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(derive_seed(seed, "dropout"))
        indices = mini_epoch_indices("random_subset", generator, len(source.train), plan.samples(1, plan.phases[0]))
        trainer.train(pipeline.train_batches(indices, 64, 16, generator, partial_last=True), plan.lr_at(local_round))
    plain = model.state_dict()
    floats = [k for k, v in plain.items() if v.is_floating_point()]
    assert floats and all(torch.equal(through_server[k], plain[k]) for k in floats)
    # the authors' one-worker parameter server (journal merge) averages every push with its copy: not plain SGD
    cfg = compose(overrides + [f"output_dir={tmp_path / 'journal'}"])
    journal = torch.load(Path(execute(cfg)["run_dir"]) / "final.pt", weights_only=True)
    assert not all(torch.equal(journal[k], plain[k]) for k in floats)


# -- final.pt and the post-hoc checks ------------------------------------------------------------------------
def test_recalibrate_batchnorm_by_hand():
    bn = nn.BatchNorm2d(1)
    bn.running_mean.fill_(5.0)
    bn.running_var.fill_(7.0)
    batches = [(torch.tensor([1.0, 3.0]).view(2, 1, 1, 1), None), (torch.tensor([5.0, 7.0]).view(2, 1, 1, 1), None)]
    assert recalibrate_batchnorm(nn.Sequential(bn), batches) == 4
    # cumulative average of the batch means (2, 6) -> 4; of the unbiased batch variances (2, 2) -> 2
    assert bn.running_mean.item() == pytest.approx(4.0) and bn.running_var.item() == pytest.approx(2.0)
    assert bn.momentum == 0.1 and not bn.training  # restored, in eval mode


def test_final_model_is_the_model_tested_last_and_posthoc_writes_its_checks(window_runs):
    summary = window_runs["summaries"]["dbsl", 1]
    result = measure(summary["run_dir"])
    # the last commit is always tested: final.pt on the full test set gives the recorded final top-1
    assert result["test"]["top1"] == pytest.approx(summary["final"]["test_top1"], abs=1e-12)
    assert result["test"]["loss"] == pytest.approx(summary["final"]["test_loss"], rel=1e-5)
    assert result["train"]["samples"] == 512 and result["bn_recalibrated"]["images"] == 512
    assert result["gap"]["top1_pp"] == pytest.approx(100 * (result["train"]["top1"] - result["test"]["top1"]))
    written = __import__("json").loads((Path(summary["run_dir"]) / "posthoc.json").read_text())
    assert written["bn_recalibrated"]["top1"] == pytest.approx(result["bn_recalibrated"]["top1"])


def test_posthoc_refuses_a_run_without_a_final_model_in_one_line(compose, tmp_path, capsys):
    cfg = compose(FAST + ["scheme=baseline", f"output_dir={tmp_path / 'run'}"])
    run_dir = Path(execute(cfg)["run_dir"])
    (run_dir / "final.pt").unlink()
    from dbsl.errors import cli_main
    assert cli_main(posthoc_main, [str(run_dir)], "") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "final.pt: missing" in err[0] and "overwrite=true" in err[0]


# -- a pre-registration of several arms --------------------------------------------------------------------------
def test_the_robustness_preregistration_reads_arm_by_arm():
    plan = read_prereg(ROOT / "sweeps" / "robustness.md")
    assert plan.endpoint == "final_window:4"
    assert [(a.arm, a.experiment, a.seeds) for a in plan.arms] == [("A", "robust_a", 3), ("B", "robust_b", 5),
                                                                  ("C", "robust_c", 5)]
    assert [c.label for c in plan.arms[0].primary] == ["dbsl n_S=2", "hybrid n_S=2"]
    assert [c.label for c in plan.arms[2].secondary] == ["hybrid n_S=2", "cpl n_S=0"]


def test_an_arm_with_a_top_level_seed_count_is_refused(tmp_path):
    from dbsl.report.collect import ReportError

    text = (ROOT / "sweeps" / "robustness.md").read_text().replace("correction: holm\n", "correction: holm\nseeds: 4\n")
    path = tmp_path / "p.md"
    path.write_text(text)
    with pytest.raises(ReportError, match="seeds is set beside arms"):
        read_prereg(path)


# -- the report: post-hoc checks and a study of arms, on records written by hand ------------------------------
def hand_study(root: Path, arms: dict, monkeypatch) -> tuple[Path, dict]:
    """Records of baseline and DBSL for seeds 0-2 per arm (experiment name -> what DBSL adds to test_report_study's
    hand-entered final top-1); returns the folder and {(arm, scheme, seed): final top-1 (%)}."""
    from dbsl.compose import compose_config
    import test_report_study as hand

    records, finals = root / "results", {}
    for name, offset in arms.items():
        for scheme in ("baseline", "dbsl"):
            cfg = compose_config(["experiment=smoke", f"scheme={scheme}", f"name={name}"])
            values = {s: v + (offset if scheme == "dbsl" else 0.0) for s, v in hand.FINAL[scheme].items()}
            monkeypatch.setitem(hand.FINAL, scheme, values)
            for seed in (0, 1, 2):
                finals[name, scheme, seed] = values[seed]
                hand.write_run(records / f"{name}_{scheme}_{seed}", cfg, scheme, seed)
            monkeypatch.undo()
    return records, finals


def test_the_report_reads_the_final_models_checks_and_pairs_the_recalibration(tmp_path, monkeypatch):
    from dbsl.cli.report import main
    from scipy import stats as sstats

    records, _ = hand_study(tmp_path, {"smoke": 0.0}, monkeypatch)
    # post-hoc checks by hand: (test top-1, recalibrated top-1) per run; train top-1 0.99, losses 0.01 and 0.4
    checks = {("baseline", 0): (0.880, 0.884), ("baseline", 1): (0.876, 0.877), ("baseline", 2): (0.884, 0.889),
              ("dbsl", 0): (0.874, 0.882), ("dbsl", 1): (0.870, 0.875), ("dbsl", 2): (0.879, 0.888)}
    for (scheme, seed), (test, recal) in checks.items():
        (records / f"smoke_{scheme}_{seed}" / "posthoc.json").write_text(__import__("json").dumps({
            "test": {"top1": test, "loss": 0.4}, "bn_recalibrated": {"top1": recal, "loss": 0.39},
            "train": {"top1": 0.99, "loss": 0.01}, "gap": {"top1_pp": 100 * (0.99 - test), "loss": 0.39}}))
    assert main([str(records), "--out", str(tmp_path / "report"), "--no-figures"]) == 0
    table = pd.read_csv(tmp_path / "report" / "tables" / "final_models.csv").set_index("label")
    base = table.loc[[i for i in table.index if i.startswith("baseline")][0]]
    assert base["runs"] == 3 and base["test_top1_pct_mean"] == pytest.approx(100 * (0.880 + 0.876 + 0.884) / 3)
    assert base["recal_change_pp"] == pytest.approx(100 * (0.004 + 0.001 + 0.005) / 3)
    moved = pd.read_csv(tmp_path / "report" / "tables" / "final_models_recalibration.csv").iloc[0]
    # per seed: (dbsl - base) after recalibration minus before: s0 (-0.2 - -0.6), s1 (-0.2 - -0.6), s2 (-0.1 - -0.5)
    diffs = [0.4, 0.4, 0.4]
    assert moved["delta_recorded_pp"] == pytest.approx(-(0.6 + 0.6 + 0.5) / 3)
    assert moved["moved_pp"] == pytest.approx(sum(diffs) / 3) and moved["seeds"] == 3
    spread = [(r - t) * 100 for (r, t) in ((0.882 - 0.884, 0.874 - 0.880), (0.875 - 0.877, 0.870 - 0.876),
                                          (0.888 - 0.889, 0.879 - 0.884))]
    mean, sd = sum(spread) / 3, pd.Series(spread).std()
    assert moved["moved_low"] == pytest.approx(mean - sstats.t.ppf(0.975, 2) * sd / 3 ** 0.5)


def test_a_study_of_arms_judges_each_arm_against_its_own_baseline(tmp_path, monkeypatch):
    from dbsl.cli.report import main

    records, finals = hand_study(tmp_path, {"arm_one": 1.0, "arm_two": -1.0}, monkeypatch)
    prereg = tmp_path / "arms.md"
    prereg.write_text("---\nendpoint: final_top1\nalpha: 0.05\ncorrection: holm\narms:\n"
                      "  - {name: A, experiment: arm_one, seeds: 3, primary: [{scheme: dbsl, num_small: 2}]}\n"
                      "  - {name: B, experiment: arm_two, seeds: 3, primary: [{scheme: dbsl, num_small: 2}]}\n"
                      "---\n# Two arms\n")
    out = tmp_path / "report"
    assert main([str(records), "--out", str(out), "--prereg", str(prereg), "--no-figures"]) == 0
    for arm, name in (("a", "arm_one"), ("b", "arm_two")):
        row = pd.read_csv(out / "tables" / f"prereg_contrasts_{arm}.csv").iloc[0]
        expected = [finals[name, "dbsl", s] - finals[name, "baseline", s] for s in (0, 1, 2)]
        assert row["seeds"] == "0,1,2" and row["mean_pp"] == pytest.approx(sum(expected) / 3)
        assert row["correction"] == "holm" and row["p_adjusted"] == pytest.approx(row["p"])  # one contrast per arm
    answers = (out / "README.md").read_text().split("## Answers", 1)[1].split("\n## ", 1)[0]
    assert "**Arm A, Primary, dbsl n_S=2.**" in answers and "**Arm B, Primary, dbsl n_S=2.**" in answers


def test_overwrite_removes_the_earlier_attempts_final_model_and_checks(window_runs, tmp_path):
    """A run made again (overwrite=true) must not keep the earlier attempt's final.pt and posthoc.json: the report
    would read checks of another model."""
    import shutil
    from dbsl.compose import compose_config

    run_dir = tmp_path / "again"
    shutil.copytree(window_runs["summaries"]["baseline", 0]["run_dir"], run_dir)
    assert (run_dir / "posthoc.json").exists()
    stale = (run_dir / "final.pt").read_bytes()
    cfg = compose_config(FAST + ["scheme=baseline", "seed=1", "train.eval_every=4", "train.eval_final_epochs=2",
                                 "overwrite=true", f"output_dir={run_dir}"])
    execute(cfg)
    assert not (run_dir / "posthoc.json").exists() and (run_dir / "final.pt").read_bytes() != stale
