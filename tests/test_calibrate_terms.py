"""The forecast terms that dbsl calibrate measures (dbsl/calibration/overheads.py): each measurement recovers a cost
known by construction on a fake clock, and the real command (the distributed executor's processes on 127.0.0.1)
writes terms that dbsl forecast then uses, leaving the hardware profile alone."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbsl.calibration.overheads import core_efficiency, eval_per_image, refit_training
from dbsl.forecast.terms import ForecastTerms, read_terms
from dbsl.plan import Phase, Plan

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_seconds_per_test_image_by_hand():
    # a test of 500 images costs 0.5 s at 16 px and 2 s at 32 px (4x the pixels): 1 ms and 4 ms per image; the
    # warm-up call costs 10 s more and must not count
    clock, calls = FakeClock(), []

    def evaluate(state, resolution):
        calls.append(resolution)
        clock.now += (0.5 if resolution == 16 else 2.0) + (10.0 if calls.count(resolution) == 1 else 0.0)

    out = eval_per_image(evaluate, {}, 500, [16, 32], repeats=3, clock=clock)
    assert out == pytest.approx({16: 0.001, 32: 0.004}) and calls == [16] * 4 + [32] * 4


def two_phases() -> Plan:
    """Worker 1 trains at B 50 (16 px) then B 100 (32 px); worker 2 at B 20 then B 40 (hand-made plan)."""
    def phase(i, res, large, small):
        return Phase(index=i, lr_stage=0, start=2 * i, end=2 * i + 2, lr=0.1, resolution=res, dropout=0.0,
                     batch_large=large, batch_small=small, steps_large=10, steps_small=10, time_large=1.0,
                     time_small=1.0)
    return Plan(scheme="dbsl", dataset_size=2000, num_workers=2, num_small=1, extra_time_ratio=1.05,
                data_large=1000, data_small=200, update_factor_small=0.5, total_commits=4, warmup_commits=0,
                warmup_start_lr=0.0, hardware="hand", phases=(phase(0, 16, 50, 20), phase(1, 32, 100, 40)))


def test_the_training_refit_recovers_the_line_at_the_plans_batch_sizes():
    # t(B) = 0.002 B + 0.05 s at 16 px, 0.008 B + 0.05 s at 32 px, on a fake clock; worker 1 is the small one
    # (n_S = 1: ranks 1..n_S), so the sizes timed are 16 px: 20, 50 and 12, 25 (a quarter and half of 50)
    clock, timed = FakeClock(), set()

    def train_steps(resolution, batch, steps):
        timed.add((resolution, batch))
        clock.now += steps * ((0.002 if resolution == 16 else 0.008) * batch + 0.05)

    fit = refit_training(train_steps, two_phases(), repeats=2, clock=clock)
    assert fit[16] == pytest.approx([0.002, 0.05]) and fit[32] == pytest.approx([0.008, 0.05])
    assert timed == {(16, 12), (16, 20), (16, 25), (16, 50), (32, 25), (32, 40), (32, 50), (32, 100)}


def test_core_efficiency_and_the_stretch_it_gives_by_hand():
    # 4 one-thread workers on 2 cores: their batches take 1.0 s alone and 2.5 s all at once. Two threads per core
    # explain a slowdown of 2; the rest, 2.5 / 2 = 1.25, is a thread's lost speed: efficiency 1 / 1.25 = 0.8. The
    # forecast then stretches a worker's compute by 2 / 0.8 = 2.5, the slowdown measured
    assert core_efficiency(1.0, 2.5, threads=4, cores=2) == pytest.approx(0.8)
    terms = ForecastTerms(shared_cores=2.0, core_efficiency=0.8)
    assert terms.stretch(4) == pytest.approx(2.5)
    # 2 workers on 4 cores: no sharing of a core, so all of a measured 1.1x is lost speed (efficiency 1 / 1.1)
    assert core_efficiency(1.0, 1.1, threads=2, cores=4) == pytest.approx(1 / 1.1)
    assert ForecastTerms(shared_cores=4.0, core_efficiency=1 / 1.1).stretch(2) == pytest.approx(1.1)
    assert ForecastTerms(core_efficiency=0.5).stretch(4) == 1.0  # a device per worker: nothing is shared


@pytest.mark.slow
def test_terms_only_measures_the_distributed_executors_costs_and_the_forecast_uses_them(tmp_path):
    """The real thing: 4 worker processes started as executor=distributed starts them, on 127.0.0.1."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = ["experiment=smoke", "train.threads=1", "executor=distributed"]
    proc = subprocess.run([sys.executable, "-m", "dbsl", "calibrate", *run, "--quick", "--terms-only"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    path = tmp_path / "results" / "conf" / "forecast" / "cpu_w16.yaml"
    terms = read_terms(path)
    assert terms.source.startswith("measured by dbsl calibrate") and "executor=distributed" in terms.source
    assert 0 < terms.latency_s < 1 and 0 < terms.link_gbit < float("inf") and terms.startup_s > 0
    assert terms.merge_gbyte_s > 0 and terms.shared_cores == len(os.sched_getaffinity(0))
    assert 0.2 < terms.core_efficiency < 2  # measured (noisy under other load), never the default left in place
    assert terms.core_efficiency != 1.0
    assert set(terms.eval_per_image) == {8, 16} and min(terms.eval_per_image.values()) > 0
    assert set(terms.batch_time_fit) == {16}  # the smoke baseline trains at 16 px only
    assert not (tmp_path / "results" / "conf" / "hardware").exists()  # the profile is left as it is
    out = subprocess.run([sys.executable, "-m", "dbsl", "forecast", *run, "--json"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["terms"] == json.loads(json.dumps(terms.to_dict()))
    assert data["seconds"] > terms.startup_s + data["training_only_seconds"]
    simulated = subprocess.run([sys.executable, "-m", "dbsl", "calibrate", "experiment=smoke", "train.threads=1",
                                "--quick", "--terms-only"], cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=300)
    assert simulated.returncode == 0, simulated.stderr
    one_process = read_terms(path)
    assert one_process.latency_s == 0 and one_process.link_gbit == float("inf") and one_process.startup_s == 0
