"""dbsl.tune: real Optuna studies (journal storage) whose trials are ordinary runs on synthetic data; resuming a
study, retrying an interrupted trial, the time budget, pruning, and the inverse of Eq. 8 behind B_S/B_L tuning."""
from __future__ import annotations

import json

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from dbsl.compose import compose_config
from dbsl.forecast import training_time
from dbsl.plan import batch_ratio_to_k, build_plan, dataset_size
from dbsl.record import read_metric_rows, read_summary
from dbsl.sinks.pruning import PruningSink
from dbsl.cli.tune import main

TINY = ["experiment=smoke", "scheme=dbsl", "schedule.epochs=2", "optim.lr_milestones=[1]", "schedule.cycle_ends=[]",
        "dataset.synthetic_train=256", "dataset.synthetic_test=64", "train.eval_every=2", "train.threads=1",
        "logger.progress=false"]


def load(tmp_path, name):
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "tune" / name / "journal.log")))
    return optuna.load_study(study_name=name, storage=storage)


def test_three_trials_then_a_resumed_study_adds_trials(tmp_path):
    args = ["--study", "s", "--budget-ratio", "1.1", *TINY, f"results_dir={tmp_path}"]
    assert main(["--trials", "3", *args]) == 0
    study = load(tmp_path, "s")
    assert len(study.trials) == 3 and all(t.state != TrialState.RUNNING for t in study.trials)
    assert study.metric_names == ["best test top-1"]  # optuna-dashboard names the objective
    assert study.user_attrs["constraint"].startswith("time_over_budget = modelled time - budget")
    folder = tmp_path / "tune" / "s"
    for trial in study.trials:  # every trial is an ordinary run with an ordinary record
        assert trial.params and trial.user_attrs["run_dir"].startswith(str(folder / "runs"))
        summary = read_summary(trial.user_attrs["run_dir"])
        if trial.state == TrialState.COMPLETE:
            assert summary["status"] == "completed" and summary["best"]["test_top1"] == trial.value
            assert len(read_metric_rows(f"{trial.user_attrs['run_dir']}/metrics.csv")) == 8
            assert "time_over_budget" in trial.constraints
    for name in ("journal.log", "trials.csv", "best.json", "history.png", "importances.png", "intermediate.png"):
        assert (folder / name).stat().st_size > 0, name

    # a process stopped after a trial's run completed but before the study recorded it (issue 29: the resumed study
    # evaluated that point again): its result is taken from the run's record, and it is not queued again
    done = next(t for t in study.trials if t.state == TrialState.COMPLETE)
    study.enqueue_trial(done.params)
    late = study.ask()
    late.suggest_int("num_small", 0, 4)
    late.suggest_float("extra_time_ratio", 1.01, 1.2, step=0.01)
    late.set_user_attr("run_dir", done.user_attrs["run_dir"])
    # a process killed mid-trial leaves a RUNNING trial in the journal: the next session retries its parameters first
    study.enqueue_trial({"num_small": 1, "extra_time_ratio": 1.05})
    cut_off = study.ask()
    cut_off.suggest_int("num_small", 0, 4)  # what the killed session had done before it started training
    cut_off.suggest_float("extra_time_ratio", 1.01, 1.2, step=0.01)
    assert main(["--trials", "5", *args]) == 0
    study = load(tmp_path, "s")
    states = [t.state for t in study.trials]
    assert states[cut_off.number] == TrialState.FAIL
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == cut_off.number]
    assert len(retry) == 1 and retry[0].params == cut_off.params and retry[0].state != TrialState.RUNNING
    assert study.trials[late.number].state == TrialState.COMPLETE and study.trials[late.number].value == done.value
    assert not [t for t in study.trials if t.user_attrs.get("retry_of") == late.number]
    assert len(study.trials) == 6  # 3 + the late one + the cut-off trial + its retry: 5 finished trials counted
    assert TrialState.RUNNING not in states

    # the budget (1.1 x the n_S=0 plan's time): the best trial is feasible and beats every other feasible one
    base = compose_config([*TINY, "dbsl.num_small=0"])
    budget = 1.1 * training_time(base)
    best = json.loads((folder / "best.json").read_text())["best"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    for trial in complete:
        modelled = read_summary(trial.user_attrs["run_dir"])["modelled_time"]
        assert trial.constraints["time_over_budget"] == pytest.approx(modelled - budget)
    feasible = [t for t in complete if t.constraints["time_over_budget"] <= 0]
    if feasible:
        assert best[0]["number"] in {t.number for t in feasible if t.value == max(f.value for f in feasible)}
    else:
        assert best == []

    # continuing with a different search is refused, naming what changed
    assert main(["--trials", "6", "--objective", "pareto", *args]) == 2


def test_pareto_study_tunes_the_batch_ratio_directly(tmp_path):
    args = ["--study", "p", "--trials", "2", "--objective", "pareto", "--params", "num_small,batch_ratio",
            "--num-small", "2:2", "--batch-ratio", "0.4:0.8:0.2", *TINY, f"results_dir={tmp_path}"]
    assert main(args) == 0
    study = load(tmp_path, "p")
    assert len(study.directions) == 2 and len(study.trials) == 2
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        accuracy, seconds = trial.values
        assert accuracy == read_summary(trial.user_attrs["run_dir"])["best"]["test_top1"]
        assert seconds == pytest.approx(read_summary(trial.user_attrs["run_dir"])["modelled_time"])
        assert f"dbsl.extra_time_ratio={trial.user_attrs['extra_time_ratio']!r}" in trial.user_attrs["overrides"]
    assert (tmp_path / "tune" / "p" / "pareto.png").stat().st_size > 0


def test_batch_ratio_maps_to_the_k_whose_small_batch_it_is(compose):
    cfg = compose(["experiment=paper_cifar100", "scheme=hybrid"])
    for n_small in (1, 2, 3, 4):
        for ratio in (0.2, 0.4, 0.6):
            cfg.dbsl.num_small = n_small
            cfg.dbsl.extra_time_ratio = k = batch_ratio_to_k(cfg, ratio, n_small)
            assert k >= 1
            phase = build_plan(cfg, dataset_size(cfg)).phases[-1]  # B_S/B_L holds at the highest resolution
            assert phase.resolution == max(cfg.schedule.resolutions)
            assert phase.batch_small == pytest.approx(ratio * phase.batch_large, abs=2), (n_small, ratio, k)


def test_training_time_of_the_baseline_plan_is_its_epochs_times_a_mini_epoch(compose):
    cfg = compose(["experiment=paper_cifar100", "scheme=dbsl", "dbsl.num_small=0"])
    plan = build_plan(cfg, dataset_size(cfg))
    # by hand: 4 workers at 32 px, B_L 560, d/n = 12500 samples -> round(22.32) = 22 batches of
    # a*560 + b = 0.283156096 + 0.015562114 = 0.298718210 s, i.e. 6.571800 s per mini-epoch; the four workers commit
    # together 4 mini-epochs per 6.5718 s, so 140 epochs (560 commits) take 140 * 6.571800 = 920.052 s
    expected = 920.052
    assert training_time(cfg, plan) == pytest.approx(expected, abs=1e-3)
    cfg = compose(["experiment=paper_cifar100", "scheme=dbsl", "dbsl.num_small=3"])
    # dual batches cost about k=1.05 times the baseline (Eq. 8 balances the mini-epochs; step counts are rounded)
    assert 1.0 < training_time(cfg) / expected < 1.1


def test_pruning_sink_reports_evaluations_and_stops_a_hopeless_run():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.5))
    trial = study.ask()
    sink = PruningSink(trial)
    sink.log_commit({"commit": 0, "test_top1": None})  # not evaluated: nothing reported
    sink.log_commit({"commit": 1, "test_top1": 0.7})
    with pytest.raises(optuna.TrialPruned, match="commit 2"):
        sink.log_commit({"commit": 2, "test_top1": 0.3})
    study.tell(trial, state=TrialState.PRUNED)
    assert study.trials[0].intermediate_values == {1: 0.7, 2: 0.3}


def test_bad_options_name_the_fix(tmp_path, capsys):
    assert main(["--params", "num_small,extra_time_ratio,batch_ratio", *TINY, f"results_dir={tmp_path}"]) == 2
    assert "search one of them" in capsys.readouterr().err
    assert main(["--num-small", "0:9", *TINY, f"results_dir={tmp_path}"]) == 2
    assert "ps.num_workers=4" in capsys.readouterr().err
    assert main([*(o for o in TINY if o != "scheme=dbsl"), "scheme=baseline", f"results_dir={tmp_path}"]) == 2
    assert "tune scheme=dbsl or scheme=hybrid" in capsys.readouterr().err


def test_a_pruned_trials_run_is_recorded_and_reported_as_pruned(compose, tmp_path):
    """Issue 29: the tuning report listed pruned trials as failed."""
    from dbsl.cli.report import main as report
    from dbsl.one_run import execute

    class Prune:
        def log_commit(self, row):
            if row["commit"] == 3:
                raise optuna.TrialPruned("accuracy below the median at commit 3")

        def log_summary(self, summary):
            pass

        def finish(self, status):
            pass

    cfg = compose([*TINY, f"output_dir={tmp_path / 'runs' / 'trial'}"])
    with pytest.raises(optuna.TrialPruned):
        execute(cfg, extra_sinks=[Prune()])
    summary = read_summary(tmp_path / "runs" / "trial")
    assert summary["status"] == "pruned" and "accuracy below the median" in summary["error"]
    assert "traceback" not in summary
    execute(compose([*TINY, "dbsl.num_small=0", f"output_dir={tmp_path / 'runs' / 'other'}"]))
    assert report([str(tmp_path / "runs"), "--out", str(tmp_path / "report"), "--no-figures"]) == 0
    runs = {r["run_dir"].rsplit("/", 1)[1]: r for r in __import__("csv").DictReader(
        open(tmp_path / "report" / "tables" / "runs.csv"))}
    assert runs["trial"]["status"] == "pruned" and runs["trial"]["included"] == "False"
    assert "1 pruned by the tuner" in (tmp_path / "report" / "README.md").read_text()
