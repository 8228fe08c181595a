"""Smoke tests of benchmarks/: each benchmark runs at a tiny size and writes its file; the CLI's --only and the
report files; the interleaving of the timing helper. No timing thresholds: speed is measured by `just bench`."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import run as bench  # noqa: E402
from benchmarks.timing import Samples, interleave, ratio, round_ratios, spread  # noqa: E402


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


@pytest.mark.parametrize("name", list(bench.BENCHMARKS))
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
