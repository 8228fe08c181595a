"""Smoke tests of benchmarks/: each benchmark runs at a tiny size and writes its file; the CLI's --only and the
report files; the interleaving of the timing helper. No timing thresholds: speed is measured by `just bench`."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402
from benchmarks import run as bench  # noqa: E402
from benchmarks.common import result  # noqa: E402
from benchmarks.timing import (Samples, compare, decided, interleave, median_interval, median_rank,  # noqa: E402
                               ratio, round_ratios, spread)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two threads can run 10x slower (see thread_policy)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def finite_positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.parametrize("name", [n for n in bench.BENCHMARKS if n != "compile_cost"])  # its own test below
def test_each_benchmark_runs_tiny_and_writes_its_file(name, tmp_path):
    data = bench.run_one(name, "tiny", tmp_path)
    assert data["status"] == "completed", data.get("traceback")
    written = json.loads((tmp_path / f"{name}.json").read_text())
    assert written["name"] == name and written["size"] == "tiny" and written["rows"]
    keys = [key for key, _ in written["columns"]]
    for row in written["rows"]:
        assert set(row) <= set(keys), f"row keys {set(row) - set(keys)} have no column"
    assert finite_positive(written["headline"]["value"])
    for row in written["rows"]:
        if "ratio" in row:
            assert finite_positive(row["ratio"])
    if name == "cpl_saving":  # the full resolution is the reference of the ratios
        full = max(written["rows"], key=lambda r: r["resolution"])
        assert full["time_ratio"] == 1.0 and full["pixel_ratio"] == 1.0
    if name == "thread_policy":
        assert [r["threads"] for r in written["rows"]] == [os.cpu_count(), os.cpu_count(), 1]
    if name == "eval_cost":  # evaluating every commit runs more tests than every m commits
        every_commit, every_m = written["rows"]
        assert every_commit["evaluations"] > every_m["evaluations"] >= 1
    if name == "fast_path":  # one row per case, and the evaluation table beside it
        assert [(r["width"], r["resolution"], r["batch"]) for r in written["rows"]] == [(2, 8, 8)]
        (evaluation,) = written["tables"]
        assert {r["side"] for r in evaluation["rows"]} >= {"no_grad NCHW (plain loop)",
                                                           "dbsl evaluate (inference_mode, channels_last)"}


def test_cli_only_writes_results_and_rejects_unknown_names(tmp_path):
    out = tmp_path / "bench"
    script = str(ROOT / "benchmarks" / "run.py")
    proc = subprocess.run([sys.executable, script, "--size", "tiny", "--only", "trainer_vs_loop", "--threads", "1",
                           "--out", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["size"] == "tiny" and list(results["benchmarks"]) == ["trainer_vs_loop"]
    assert results["machine"]["threads"] == 1
    md = (out / "results.md").read_text()
    assert "| trainer_vs_loop |" in md and "| width | px | batch | bare img/s |" in md
    bad = subprocess.run([sys.executable, script, "--only", "nope"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "--only nope: no such benchmark" in bad.stderr and "trainer_vs_loop" in bad.stderr


def test_a_failing_benchmark_is_recorded_and_keeps_earlier_results(tmp_path, monkeypatch):
    module = bench.module("cpl_saving")
    (tmp_path / "eval_cost.json").write_text(json.dumps({"name": "eval_cost", "status": "completed", "rows": [],
                                                         "columns": [], "headline": {}}))
    monkeypatch.setitem(module.SIZES, "tiny", {**module.SIZES["tiny"], "resolutions": []})  # max() of nothing
    assert bench.main(["--size", "tiny", "--only", "cpl_saving", "--out", str(tmp_path)]) == 1
    results = json.loads((tmp_path / "results.json").read_text())["benchmarks"]
    assert results["cpl_saving"]["status"] == "failed" and "Error" in results["cpl_saving"]["error"]
    assert results["eval_cost"]["status"] == "completed"
    assert "**failed**" in (tmp_path / "results.md").read_text()


def test_interleave_alternates_the_order_and_takes_medians():
    calls, now = [], [0.0]
    cost = {"a": 1.0, "b": 3.0}

    def side(name):
        def call():
            calls.append(name)
            now[0] += cost[name]
            return name.upper()
        return call

    timed = interleave({"a": side("a"), "b": side("b")}, repeats=3, warmup=1, clock=lambda: now[0])
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then AB BA AB
    assert timed["a"].seconds == [1.0, 1.0, 1.0] and timed["b"].values == ["B", "B", "B"]
    assert ratio(timed["b"], timed["a"]) == 3.0 and timed["a"].rate(10) == 10.0


def test_ratio_helpers_by_hand():
    slow = Samples(seconds=[3.0, 9.0, 4.0, 5.0, 100.0])  # median 5.0 (the outlier 100 does not move it)
    fast = Samples(seconds=[2.0, 1.0, 2.5, 2.5, 1.5])  # median 2.0
    assert ratio(slow, fast) == 2.5  # 5.0 / 2.0
    assert round_ratios(slow, fast) == [1.5, 9.0, 1.6, 2.0, 100 / 1.5]  # 3/2, 9/1, 4/2.5, 5/2.5, 100/1.5
    assert spread([1.5, 9.0, 1.6, float("nan")]) == [1.5, 9.0]
    assert fast.rate(64) == 32.0  # 64 images in the median 2.0 s


def test_median_interval_by_hand():
    # K ~ Binomial(n, 1/2); [x_(l), x_(n+1-l)] covers the median with probability 1 - 2 P(K <= l-1)
    # n = 5: [min, max] covers 1 - 2/32 = 0.9375 < 0.95: no 95 % interval
    assert median_rank(5) is None and median_interval([3.0, 1.0, 2.0, 5.0, 4.0]) is None
    # n = 6: [min, max] covers 1 - 2/64 = 0.969; [x_(2), x_(5)] only 1 - 2*7/64 = 0.781
    assert median_interval([5.0, 1.0, 4.0, 2.0, 6.0, 3.0]) == (1.0, 6.0)
    # n = 10: P(K <= 1) = 11/1024 -> 0.979 >= 0.95; P(K <= 2) = 56/1024 -> 0.891 < 0.95: [x_(2), x_(9)]
    assert median_rank(10) == 2
    assert median_interval([10.0, 3.0, 1.0, 7.0, 2.0, 9.0, 4.0, 8.0, 6.0, 5.0]) == (2.0, 9.0)
    # n = 17: P(K <= 4) = (1 + 17 + 136 + 680 + 2380) / 131072 = 0.0245 -> 0.951; P(K <= 5) adds 6188 -> 0.857
    values = [float(v) for v in (17, 5, 9, 1, 13, 2, 16, 8, 3, 12, 4, 15, 6, 11, 7, 14, 10)]
    assert median_rank(17) == 5 and median_interval(values) == (5.0, 13.0)
    # at 90 %, n = 10 still stops at l = 2 (l = 3 covers 0.891 < 0.90); an infinite value is dropped
    assert median_rank(10, 0.90) == 2 and median_interval([1.0] * 5 + [float("inf")]) is None


def test_comparison_and_decision_by_hand():
    a = Samples(seconds=[2.0] * 6, cpu=[1.0, 1.2, 1.0, 1.5, 1.0, 1.1])
    b = Samples(seconds=[1.0] * 6, cpu=[1.0, 1.0, 2.0, 1.0, 1.0, 1.0])
    speed = compare(a, b, "cpu", invert=True)  # b / a per round on CPU seconds
    assert speed.ratios == pytest.approx([1.0, 1 / 1.2, 2.0, 1 / 1.5, 1.0, 1 / 1.1])
    assert speed.median == pytest.approx((1 / 1.1 + 1.0) / 2)  # sorted: 0.667, 0.833, 0.909, 1, 1, 2
    assert speed.interval == pytest.approx((1 / 1.5, 2.0))  # n = 6: [min, max]
    assert compare(a, b, "wall").ratios == [2.0] * 6
    assert decided((1.21, 1.59), 1.2) and decided((0.5, 0.9), 1.0) and not decided((0.9, 1.1), 1.0)
    assert not decided(None, 1.0)
    head = result("x", "x", "x", [], [], headline=speed.headline("b / a", 0.9))
    assert head["headline"]["decided"] is False and head["headline"]["met"] is True  # 0.667 < 0.9 < 2.0
    assert report.verdict(head["headline"]) == "undecided (value: met)"
    head = result("x", "x", "x", [], [], headline=speed.headline("b / a", 0.5))
    assert head["headline"]["decided"] is True and report.verdict(head["headline"]) == "met"
    with pytest.raises(ValueError, match="clock='gpu'"):
        a.times("gpu")


def test_interleave_stops_once_enough_and_times_both_clocks():
    now, cpu = [0.0], [0.0]

    def side(wall, used):
        def call():
            now[0] += wall
            cpu[0] += used
        return call

    rounds = []

    def enough(out):
        rounds.append(len(out["a"].seconds))
        return len(out["a"].seconds) >= 3

    timed = interleave({"a": side(2.0, 1.0), "b": side(1.0, 1.0)}, repeats=10, warmup=0, clock=lambda: now[0],
                       cpu_clock=lambda: cpu[0], min_repeats=2, enough=enough)
    assert rounds == [2, 3]  # asked from the second round on, stopped at the third
    assert timed["a"].seconds == [2.0] * 3 and timed["a"].cpu == [1.0] * 3 and timed["b"].cpu == [1.0] * 3


def test_compile_break_even_by_hand():
    from benchmarks.compile_cost import break_even, saving_per_batch

    # 0.1 s eager per batch, compiled 1.25x faster: 0.1 * (1 - 1/1.25) = 0.02 s saved per batch
    assert saving_per_batch({"eager_s": 0.1, "speedup": [1.0, 1.25, 1.25, 1.5, 1.25]}) == pytest.approx(0.02)
    # 30 s of compiling, 12 s saved over 120 mini-epochs (0.1 s each): it pays after 300 mini-epochs
    assert break_even(30.0, 12.0, 120) == pytest.approx(300.0)
    assert break_even(30.0, 0.0, 120) is None and break_even(30.0, -1.0, 120) is None


def test_compile_walk_counts_recompiles(tmp_path):
    """The tiny walk (dynamo, eager backend): (8 px, 8), (8 px, 4), (6 px, 8), (6 px, 4), dropout 0.1 at 8 px and 0.2
    at 6 px. dynamic=False compiles each of the 4 shapes: 3 recompiles; a dynamic batch dimension compiles once per
    resolution: 1 recompile. A second worker's model of the same class reuses the compiled code."""
    data = bench.run_one("compile_cost", "tiny", tmp_path)
    assert data["status"] == "completed", data.get("traceback")
    assert data["recompiles"] == {"static": 3, "batch": 1}
    assert data["second_worker_frames"] == {"static": 0, "batch": 0}
    frames = {(r["setting"], r["resolution"], r["batch"]): r["frames"] for r in data["rows"]}
    assert [frames[("batch", r, b)] for r, b in ((8, 8), (8, 4), (6, 8), (6, 4))] == [1, 0, 1, 0]


def test_load_monitor_counts_other_processes_cpu():
    """A busy process that is not (yet) a reaped child of ours counts as another process's load."""
    script = "import time\nend = time.time() + 1.5\nwhile time.time() < end:\n    pass\n"
    with bench.LoadMonitor(every=0.2) as monitor:
        busy = subprocess.Popen([sys.executable, "-c", script])
        start = time.perf_counter()
        while time.perf_counter() - start < 1.0:
            time.sleep(0.05)
    busy.wait(10)
    summary = monitor.summary()
    assert summary["cores"] == os.cpu_count() and summary["seconds"] >= 1.0
    assert summary["others_cores"] >= 0.4  # the busy loop alone used about a core for most of the second
    assert summary["mean"] is not None and summary["max"] >= summary["mean"]


DRAFT_STUDY = ("experiment=cpu_fashion_mnist", "dataset.num_train=12000", "dataset.num_test=0",
               "schedule.batch_large=[96,64]", "schedule.epochs=32", "optim.lr_milestones=[16,24]",
               "schedule.cycle_ends=[8,16,20,24,28,32]", "optim.warmup_epochs=2", "optim.warmup_start_lr=0.02",
               "hardware=cpu1t_w16_fmnist")


def test_break_even_per_scheme_by_hand():
    """The study's draft (12,000 images, n = 4, 32 epochs, B_L = 96 at 20 px and 64 at 28 px, n_S = 2, k = 1.05): a
    baseline run is 128 mini-epochs of round(3000 / 64) = 47 batches at 28 px; CPL runs 64 of them at 20 px, of
    round(3000 / 96) = 31 batches; DBSL's d_L = 3150 and d_S = 2850 give 33 / 66 batches at 20 px (B_S = 43) and
    49 / 98 at 28 px (B_S = 29), each shape in 32 of the hybrid run's 128 mini-epochs."""
    from benchmarks.compile_cost import scheme_rows

    steady = [{"resolution": r, "batch": b, "eager_s": 0.1, "speedup": [1.25] * 9}
              for r, b in ((20, 96), (20, 43), (28, 64), (28, 29))]
    walk = [{"resolution": r, "batch": b, "dropout": d, "compile_s": c}
            for r, b, d, c in ((20, 96, 0.1, 20.0), (20, 43, 0.1, 20.0), (28, 64, 0.2, 30.0), (28, 29, 0.2, 30.0))]
    warm = [dict(w, compile_s=w["compile_s"] / 10) for w in walk]
    rows, source = scheme_rows({"walk": walk, "steady": steady}, {"walk": warm}, DRAFT_STUDY)
    assert source == " ".join(DRAFT_STUDY)
    by = {r["scheme"]: r for r in rows}
    # baseline: 30 s of compiling; 128 x 47 batches x 0.1 s x (1 - 1/1.25) = 120.32 s saved
    base = by["baseline"]
    assert (base["shapes"], base["mini_epochs"], base["compile_s"], base["warm_s"]) == (1, 128, 30.0, 3.0)
    assert base["saving_s"] == pytest.approx(120.32) and base["pays"] is True
    assert base["break_even"] == pytest.approx(30.0 / (120.32 / 128))  # 31.9 mini-epochs
    assert base["break_even_warm"] == pytest.approx(3.0 / (120.32 / 128))
    # cpl: 20 + 30 s of compiling; 64 x (31 + 47) batches x 0.02 s = 99.84 s saved
    assert by["cpl"]["compile_s"] == 50.0 and by["cpl"]["saving_s"] == pytest.approx(99.84)
    # hybrid: 4 shapes, 100 s; 32 mini-epochs each of 33, 66, 49, 98 batches: 32 x 246 x 0.02 = 157.44 s
    assert by["hybrid"]["compile_s"] == 100.0 and by["hybrid"]["saving_s"] == pytest.approx(157.44)


def test_compile_headline_decides_on_the_break_even_interval():
    from benchmarks.compile_cost import compile_headline

    def judged(value, interval):
        row = {"scheme": "baseline", "break_even": value, "mini_epochs": 128, "break_even_interval": interval,
               "saving_s": 1.0, "compile_s": 47.0}
        h = result("x", "x", "x", [], [], headline=compile_headline(row, 9))["headline"]
        return h["value"], report.verdict(h)

    assert judged(None, ["never", "never"]) == ("never", "**missed**")  # no speed-up even at the interval's best
    assert judged(None, [127.0, "never"]) == ("never", "undecided (value: missed)")  # 127 <= 128 at best
    assert judged(50.0, [40.0, 90.0]) == (50.0, "met")
    assert judged(300.0, [129.0, 500.0]) == (300.0, "**missed**")


def test_refreshing_one_benchmark_keeps_the_record_of_the_earlier_run(tmp_path):
    out = str(tmp_path)
    assert bench.main(["--size", "tiny", "--only", "cpl_saving,eval_cost", "--out", out]) == 0
    assert bench.main(["--size", "tiny", "--only", "cpl_saving", "--out", out]) == 0
    runs = json.loads((tmp_path / "results.json").read_text())["runs"]
    assert [r["benchmarks"] for r in runs] == [["eval_cost"], ["cpl_saving"]]
    assert "Made by 2 runs" in (tmp_path / "results.md").read_text()
