"""The time forecast (dbsl/forecast): every term against a run worked out by hand with round numbers, the replay
against the simulated executor's own clock, and the paper-table validation's fit."""
from __future__ import annotations

import pytest

from dbsl.forecast import ForecastTerms, forecast_run, run_shape, training_time
from dbsl.forecast.replay import RunShape, replay
from dbsl.plan import Phase, Plan
from dbsl.ps.server import SyncPolicy
from dbsl.timemodel import HardwareProfile, LinearTimeModel


def two_workers(sync="ASP", epochs=2, eval_every=1) -> Plan:
    """Two large-batch workers, one phase at 32 px, a mini-epoch of 10 s each (hand-made plan)."""
    phase = Phase(index=0, lr_stage=0, start=0, end=2 * epochs, lr=0.1, resolution=32, dropout=0.0,
                  batch_large=100, batch_small=0, steps_large=10, steps_small=0, time_large=10.0, time_small=0.0)
    return Plan(scheme="baseline", dataset_size=2000, num_workers=2, num_small=0, extra_time_ratio=1.0,
                data_large=1000, data_small=0, update_factor_small=1.0, total_commits=2 * epochs, warmup_commits=0,
                warmup_start_lr=0.0, hardware="hand", phases=(phase,))


PROFILE = HardwareProfile("hand", {32: LinearTimeModel(a=0.009, b=0.1)}, {32: 100})  # t(100) = 1.0 s
SHAPE = RunShape(model_bytes=1e9, test_images=1000, eval_batch=100)
# 1 GB over 8 Gbit/s: 1 s each way; merging 1 GB at 1 GB/s: 1 s; a test of 1000 images at 1 ms: 1 s
ROUND = ForecastTerms(link_gbit=8.0, latency_s=0.0, merge_gbyte_s=1.0, eval_per_image={32: 0.001},
                      commit_overhead_s=0.5, startup_s=2.0)


def test_asp_two_workers_by_hand():
    # Both start at 0 and arrive at 10.5 (10 s of training + 0.5 s fixed cost); a tie, so worker 1 first.
    #  w1: inbound 10.5-11.5, merge 11.5-12.5, outbound 12.5-13.5, test 13.5-14.5; trains again 14.5-25.0
    #  w2: inbound waits for w1 until 11.5: 11.5-12.5, merge 12.5-13.5, outbound 13.5-14.5, test 14.5-15.5; 15.5-26.0
    #  w1: 25-26, 26-27, 27-28, test 28-29 (commit 2); then starts again at 29, cut off by the end
    #  w2: 26-27, 27-28, 28-29, test 29-30 (commit 3, the last): recorded at 30; plus 2 s of start-up = 32 s
    f = replay(two_workers(), SyncPolicy("ASP"), PROFILE, ROUND, SHAPE)
    assert f.seconds == pytest.approx(32.0) and f.commits == 4
    # w1: 2 x 10 s trained + 1 s of the cut-off mini-epoch (29-30); w2 waited 1 s for the inbound link
    assert f.workers[1] == pytest.approx({"compute": 21.0, "overhead": 1.0, "communication": 6.0, "evaluation": 2.0,
                                          "waiting": 0.0})
    assert f.workers[2] == pytest.approx({"compute": 20.0, "overhead": 1.0, "communication": 6.0, "evaluation": 2.0,
                                          "waiting": 1.0})
    assert f.server == pytest.approx({"inbound": 4.0, "merge": 4.0, "outbound": 4.0})
    assert f.server_busy()["inbound"] == pytest.approx(4.0 / 30.0)  # of the training: 32 s less 2 s of start-up


def test_bsp_two_workers_by_hand():
    # a round: both train 0-10 (no fixed cost here), inbound 10-11 and 11-12, the round merged once both are in:
    # merges 12-13 and 13-14, outbound 13-14 and 14-15; a BSP round is tested once, after its last commit (w2's):
    # 15-16. Each goes on with its answer: w1 trains 14-24, w2 16-26; inbound 24-25 and 26-27, merges 27-28 and
    # 28-29, outbound 28-29 and 29-30, w2's test 30-31: the run ends at 31 s
    terms = ForecastTerms(link_gbit=8.0, latency_s=0.0, merge_gbyte_s=1.0, eval_per_image={32: 0.001})
    f = replay(two_workers("BSP"), SyncPolicy("BSP"), PROFILE, terms, SHAPE)
    assert f.seconds == pytest.approx(31.0)
    # w1 waits 1 s for w2's push in round 1 (11-12), 2 s in round 2 (25-27) and 2 s at the end (29-31)
    assert (f.workers[1]["evaluation"], f.workers[1]["waiting"]) == (0.0, pytest.approx(3.0 + 2.0))
    assert (f.workers[2]["evaluation"], f.workers[2]["waiting"]) == (pytest.approx(2.0), pytest.approx(3.0))


def test_latency_eval_fraction_and_only_the_tested_commits_cost_a_test():
    # latency 0.25 s per message: a transfer is 1.25 s. The test by the time model: 1/4 of t(100) = 1.0 s per
    # batch, 10 batches of the 1000 test images: 2.5 s; eval_every=2 with 4 commits: commits 1 and 3 tested
    # (the last is always tested). One worker's view (ASP, no fixed cost, no start-up):
    #  w1: 0-10, inbound 10-11.25, merge 11.25-12.25, outbound 12.25-13.5 (commit 0, untested); trains 13.5-23.5
    #  w2: 0-10, inbound 11.25-12.5, merge 12.5-13.5, outbound 13.5-14.75, test 14.75-17.25 (commit 1); 17.25-27.25
    #  w1: inbound 23.5-24.75, merge 24.75-25.75, outbound 25.75-27 (commit 2, untested)
    #  w2: inbound 27.25-28.5, merge 28.5-29.5, outbound 29.5-30.75, test 30.75-33.25 (commit 3): 33.25 s
    terms = ForecastTerms(link_gbit=8.0, latency_s=0.25, merge_gbyte_s=1.0, eval_fraction=0.25)
    f = replay(two_workers(eval_every=2), SyncPolicy("ASP", eval_every=2), PROFILE, terms, SHAPE)
    assert f.seconds == pytest.approx(33.25)
    assert f.workers[1]["evaluation"] == 0.0 and f.workers[2]["evaluation"] == pytest.approx(5.0)


def test_workers_sharing_cores_train_and_test_slower_by_hand():
    # a distributed run of 4 one-thread workers on 2 shared cores: each computes at half speed (4 / 2 = 2), so a
    # mini-epoch trains 20 s and a test takes 2 s (links, merge, fixed cost and start-up unchanged). ROUND's terms:
    #  w1: 0-20 + 0.5 = 20.5; inbound 20.5-21.5, merge 21.5-22.5, outbound 22.5-23.5 (commit 0, tested) 23.5-25.5;
    #      trains 25.5-46.0
    #  w2: inbound 21.5-22.5, merge 22.5-23.5, outbound 23.5-24.5, test 24.5-26.5; trains 26.5-47.0
    #  w1: inbound 46-47, merge 47-48, outbound 48-49, test 49-51 (commit 2)
    #  w2: inbound 47-48, merge 48-49, outbound 49-50, test 50-52 (commit 3): 52 + 2 s of start-up = 54 s
    shared = ForecastTerms(**{**ROUND.to_dict(), "shared_cores": 2.0})
    f = replay(two_workers(), SyncPolicy("ASP"), PROFILE, shared, RunShape(1e9, 1000, 100, cpu_threads=4))
    assert f.seconds == pytest.approx(54.0)
    assert f.workers[2]["evaluation"] == pytest.approx(4.0)
    # no sharing: a GPU per worker (shared_cores 0), or threads that fit the cores, as in the first test (32 s)
    assert replay(two_workers(), SyncPolicy("ASP"), PROFILE, ROUND, RunShape(1e9, 1000, 100, cpu_threads=4)
                  ).seconds == pytest.approx(32.0)
    assert replay(two_workers(), SyncPolicy("ASP"), PROFILE, shared, RunShape(1e9, 1000, 100, cpu_threads=2)
                  ).seconds == pytest.approx(32.0)


def test_only_a_distributed_run_counts_its_workers_threads(compose):
    simulated = compose(["experiment=smoke", "train.threads=1"])
    distributed = compose(["experiment=smoke", "train.threads=1", "executor=distributed"])
    assert run_shape(simulated).cpu_threads == 0 and run_shape(distributed).cpu_threads == 4  # 4 workers x 1


def test_a_rebuild_is_paid_when_a_workers_phase_changes():
    plan = two_workers(epochs=2)
    first = plan.phases[0]
    second = Phase(**{**first.__dict__, "index": 1, "start": 2, "end": 4})
    plan = Plan(**{**plan.__dict__, "phases": (Phase(**{**first.__dict__, "end": 2}), second)})
    terms = ForecastTerms.training_only()
    plain = replay(plan, SyncPolicy("ASP"), PROFILE, terms, SHAPE).seconds
    rebuilt = replay(plan, SyncPolicy("ASP"), PROFILE, ForecastTerms(**{**terms.__dict__, "rebuild_s": 3.0}), SHAPE)
    # training only: every mini-epoch 10 s, both arrive at 10 (worker 1 first). Worker 1 pulls again after one
    # commit, still in phase 0 (phase 1 starts at commit 2): 10-20. Worker 2 pulls after two commits, in phase 1:
    # a rebuild of 3 s first, 10-23, the last commit. Worker 1's next mini-epoch (phase 1, 20-33) is cut off at 23
    assert (plain, rebuilt.seconds) == (pytest.approx(20.0), pytest.approx(23.0))
    assert rebuilt.workers[2]["compute"] == pytest.approx(10.0 + 3.0 + 10.0)
    assert rebuilt.workers[1]["compute"] == pytest.approx(10.0 + 10.0 + 3.0)  # 3 s of the cut-off mini-epoch


def test_the_training_only_forecast_is_the_simulated_executors_clock(compose, tmp_path):
    from dbsl.one_run import execute

    for i, extra in enumerate((["ps.sync=ASP"], ["ps.sync=SSP", "ps.staleness=0", "dbsl.extra_time_ratio=1.3"],
                               ["ps.sync=BSP"])):
        cfg = compose(["experiment=smoke", "scheme=hybrid", "model.width=2", "dataset.synthetic_train=512",
                       "dataset.synthetic_test=64", "train.threads=1", *extra,
                       f"output_dir={tmp_path / str(i)}"])
        summary = execute(cfg)
        assert training_time(cfg) == summary["modelled_time"], extra  # the same floats, the same rules


def test_the_model_bytes_of_resnet18_on_cifar100(compose):
    # ResNet-18 with the CIFAR stem and 100 classes has 11,220,132 parameters (the count torchvision-style CIFAR
    # ResNet-18s report); BatchNorm adds a running mean and variance per channel: 64 (stem) + 4 x 64 + (4 x 128
    # + 128) + (4 x 256 + 256) + (4 x 512 + 512) = 4,800 channels, 9,600 values; 4 bytes each
    shape = run_shape(compose(["experiment=paper_cifar100"]))
    assert shape.model_bytes == (11_220_132 + 9_600) * 4
    assert (shape.test_images, shape.eval_batch) == (10_000, 560)


def test_a_paper_preset_forecast_adds_up(compose):
    cfg = compose(["experiment=paper_cifar100", "scheme=hybrid", "dbsl.num_small=2"])
    f = forecast_run(cfg)
    assert f.commits == 560 and f.seconds > training_time(cfg)
    for rank, shares in f.shares().items():  # each worker's five shares make up the run
        assert sum(shares.values()) == pytest.approx(1.0), rank


def test_bad_terms_are_named():
    from dbsl.config import ConfigError

    with pytest.raises(ConfigError, match="--set link_gbit=fast: 'fast' is not a number"):
        ForecastTerms().with_values(["link_gbit=fast"])
    with pytest.raises(ConfigError, match="--set nonsense=1: expected NAME=VALUE with NAME one of link_gbit"):
        ForecastTerms().with_values(["nonsense=1"])
    assert ForecastTerms().with_values(["link_gbit=10"]).link_gbit == 10.0


def test_the_capacity_curve_stops_where_b_l_exceeds_a_workers_share():
    from dbsl.forecast.capacity import workers_to_try

    # paper_cifar100's baseline trains at 32 px with B_L = 560 and round(d_L / B_L) steps, d_L = 50,000 / n:
    # n = 178 gives d_L = 281 (281 / 560 = 0.502, one step), n = 179 gives 279 (0.498: no step, no plan).
    # The hybrid's 24 px stages have B_L = 600: n = 166 gives 301 (0.502), n = 167 gives 299 (0.498)
    assert workers_to_try(["experiment=paper_cifar100", "scheme=baseline"], (64, 128, 256))[-2:] == [178, 179]
    assert workers_to_try(["experiment=paper_cifar100", "scheme=hybrid", "dbsl.num_small=0"],
                          (128, 256))[-2:] == [166, 167]


def test_the_fit_finds_the_overhead_that_gives_the_seconds(compose):
    from dbsl.forecast.paper import fit_term

    cfg = compose(["experiment=paper_cifar100", "scheme=baseline"])
    base = ForecastTerms()
    plain = forecast_run(cfg, base).seconds
    # 140 mini-epochs per worker in a steady ASP run: each 1 s of fixed cost per mini-epoch adds about 140 s
    fitted = fit_term(cfg, plain + 140.0, base)
    assert fitted.commit_overhead_s == pytest.approx(1.0, rel=0.02)
    assert forecast_run(cfg, fitted).seconds == pytest.approx(plain + 140.0, rel=1e-6)
    assert fit_term(cfg, plain - 1.0, base).commit_overhead_s == 0.0  # already above: the fit stops at 0


def test_the_command_prints_the_whole_run_and_json_gives_its_seconds():
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    args = ["experiment=paper_cifar100", "scheme=hybrid", "dbsl.num_small=2"]
    text = subprocess.run([sys.executable, "-m", "dbsl", "forecast", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)
    assert text.returncode == 0, text.stderr
    assert "FORECAST" in text.stdout and "560 commits" in text.stdout and "scheme=baseline" in text.stdout
    out = subprocess.run([sys.executable, "-m", "dbsl.forecast", *args, "--json", "--set", "link_gbit=10"], cwd=root,
                         env=env, capture_output=True, text=True, timeout=300)
    data = json.loads(out.stdout)
    assert data["commits"] == 560 and data["terms"]["link_gbit"] == 10.0
    assert data["seconds"] > data["training_only_seconds"] > 0
    assert data["change_against_baseline_pct"] == pytest.approx(100 * (data["seconds"] / data["baseline_seconds"] - 1))
    bad = subprocess.run([sys.executable, "-m", "dbsl.forecast", *args, "--set", "link_gbit=fast"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--set link_gbit=fast: 'fast' is not a number" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_the_published_forecast_report_is_rebuilt_with_the_same_numbers_and_the_readme_quotes_it(tmp_path):
    """reports/forecast comes from the presets, the paper's numbers and the terms alone: rebuilt, every table's CSV
    is the same, and the README shows the paper-table validation as the report has it."""
    from pathlib import Path

    from dbsl.report.forecast import build_forecast_report

    root = Path(__file__).resolve().parents[1]
    build_forecast_report(tmp_path / "rebuilt", figures=False)
    published = root / "reports" / "forecast" / "tables"
    names = sorted(p.name for p in published.glob("*.csv"))
    assert names == sorted(p.name for p in (tmp_path / "rebuilt" / "tables").glob("*.csv")) and len(names) == 9
    for name in names:
        assert (tmp_path / "rebuilt" / "tables" / name).read_text() == (published / name).read_text(), name
    for quoted in ("forecast_paper_times.md", "forecast_distributed.md"):
        table = (published / quoted).read_text().split("\n\n", 1)[1].strip()
        assert table in (root / "README.md").read_text(), quoted


def test_the_record_fit_by_hand(compose, tmp_path):
    """Two records written here: t(B) per resolution through the median seconds per batch, and the seconds per test
    image by non-negative least squares, worked out by hand."""
    import json

    from omegaconf import OmegaConf

    from dbsl.forecast.records import fit_terms

    cfg = compose(["experiment=smoke", "dataset.synthetic_test=100"])
    header = "commit,resolution,batch_size,samples,cpu_seconds,test_loss\n"
    # run a: at 16 px, batches of 10 (4 steps: 2.0 s, so 0.5 s per batch) and of 20 (2 steps: 1.4 s, 0.7 s per
    # batch): t(B) = 0.02 B + 0.3. Tested twice at 16 px; 3.0 s of tests: 2 x 100 images
    # run b: the same batches at 0.5 and 0.7 s; tested once at 8 px and once at 16 px; 2.0 s of tests.
    # Per image: 200 e16 = 3.0 gives e16 = 0.015; 100 e8 + 100 e16 = 2.0 gives e8 = 0.005
    rows = {"a": ["0,16,10,40,2.0,1.0", "1,16,20,40,1.4,1.0"], "b": ["0,16,10,40,2.0,", "1,16,20,40,1.4,1.0",
                                                                      "2,8,10,40,2.0,1.0"]}
    evals = {"a": 3.0, "b": 2.0}
    runs = []
    for name, lines in rows.items():
        run = tmp_path / name
        run.mkdir()
        OmegaConf.save(OmegaConf.structured(cfg), run / "config.yaml")
        (run / "metrics.csv").write_text(header + "\n".join(lines) + "\n")
        (run / "summary.json").write_text(json.dumps({"eval_time": evals[name]}))
        runs.append(run)
    terms = fit_terms(runs)
    assert terms.batch_time_fit[16] == pytest.approx([0.02, 0.3])
    assert terms.eval_per_image == pytest.approx({8: 0.005, 16: 0.015})


def test_ssp_a_held_pull_is_answered_after_the_releasing_merge_by_hand():
    # staleness 0; worker 1 (small batch) takes 20 s, worker 2 takes 10 s; transfers and merges 1 s each, no tests.
    #  w2 arrives 10: inbound 10-11, merge 11-12, outbound 12-13 (commit 0); it leads by one push: held
    #  w1 arrives 20: 20-21, 21-22, 22-23 (commit 1); both may go on: w2's held pull is answered after w1's merge,
    #      over the outbound link once w1's answer is out: 23-24; w2 trains 24-34, w1 23-43
    #  w2 arrives 34: 34-35, 35-36, 36-37 (commit 2), held again; w1 arrives 43: 43-44, 44-45, 45-46 (commit 3): 46 s
    plan = two_workers()
    phase = Phase(**{**plan.phases[0].__dict__, "batch_small": 50, "steps_small": 20, "time_small": 20.0})
    plan = Plan(**{**plan.__dict__, "num_small": 1, "data_small": 1000, "phases": (phase,)})
    terms = ForecastTerms(link_gbit=8.0, latency_s=0.0, merge_gbyte_s=1.0, eval_fraction=0.0)
    f = replay(plan, SyncPolicy("SSP", staleness=0, eval_every=100), PROFILE, terms, SHAPE)
    assert f.seconds == pytest.approx(46.0)
    assert f.workers[2]["communication"] == pytest.approx(3.0 + 1.0 + 3.0)  # two commits and one held pull
    assert f.workers[2]["waiting"] == pytest.approx(46.0 - 20.0 - 7.0)
