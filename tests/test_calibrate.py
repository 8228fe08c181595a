"""Time-model calibration: a fake clock with known lines is recovered exactly; a curved cost keeps the measured
table; a real quick calibration of a tiny model on the CPU writes a profile that hardware=<name> plans with."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dbsl.calibration.calibrate import Settings, run_calibration
from dbsl.calibration.fit import monotone
from dbsl.calibration.measure import batch_grid, largest_fitting_batch
from dbsl.calibration.profile import load_profile
from dbsl.cli.calibrate import main
from dbsl.config import ConfigError
from dbsl.plan import build_plan, dataset_size

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class LineBench:
    """A device whose training step costs exactly ``cost(resolution, B)`` seconds per batch on a fake clock, plus
    a large one-off cost at every new shape (what warm-up must exclude) and an outlier every third call (what the
    median must reject). Memory is M(B) = 100 MiB + B * slope[resolution]."""

    probes_out_of_memory = False

    def __init__(self, clock: FakeClock, cost, memory_slope: dict, fail_at: int | None = None):
        self.clock, self.cost, self.memory_slope, self.fail_at = clock, cost, memory_slope, fail_at
        self.calls: dict = {}

    def train_steps(self, resolution: int, batch_size: int, steps: int) -> None:
        if resolution == self.fail_at:
            raise RuntimeError("device lost")
        key = (resolution, batch_size)
        count = self.calls.get(key, -1)
        self.calls[key] = count + 1
        factor = 50.0 if count < 0 else (1.0, 3.0, 0.99)[count % 3]
        self.clock.now += factor * steps * self.cost(resolution, batch_size)

    def memory(self, resolution: int, batch_size: int) -> float:
        return 100 * MIB + batch_size * self.memory_slope[resolution]

    def fits(self, resolution, batch_size):
        return None

    def memory_budget(self):
        return None

    def device_name(self) -> str:
        return "fake line device"


LINES = {8: (2.0e-4, 6.0e-3), 16: (7.5e-4, 9.0e-3)}  # resolution: (a, b)


def smoke_cfg(compose, tmp_path, *overrides):
    return compose(["experiment=smoke", "scheme=hybrid", f"results_dir={tmp_path / 'results'}", *overrides])


def fake_settings(**kw) -> Settings:
    return Settings([8, 16], max_batch=256, points=8, repeats=3, warmup=1, memory_budget=300 * MIB,
                    validate_repeats=3, **kw)


def test_fake_clock_line_is_recovered_and_planned_with(compose, tmp_path, monkeypatch):
    clock = FakeClock()
    bench = LineBench(clock, lambda r, b: LINES[r][0] * b + LINES[r][1], {8: 0.25 * MIB, 16: 1.0 * MIB})
    cfg = smoke_cfg(compose, tmp_path)
    log: list[str] = []
    result = run_calibration(cfg, fake_settings(), "fake_line", bench, 1024, clock=clock, report=log.append)

    assert result.kind == "linear" and not result.reasons
    for fit in result.fits:
        a, b = LINES[fit.resolution]
        assert fit.a == pytest.approx(a, rel=1e-9) and fit.b == pytest.approx(b, rel=1e-9)
        assert fit.r2 == pytest.approx(1.0) and fit.worst_residual < 1e-9
        assert min(fit.batch_sizes) <= 16 and max(fit.batch_sizes) == fit.batch_large
    # B_L: the memory predictor under the 300 MiB budget binds at 16 px (100 + B MiB -> 200), not at 8 px (-> 800)
    by_res = {f.resolution: f for f in result.fits}
    assert by_res[16].predicted_max_batch == 200 and by_res[16].batch_large == 200
    assert by_res[8].predicted_max_batch == 800 and by_res[8].batch_large == 256

    # Table 4: whole mini-epochs of the hybrid plan (B_L and B_S at both resolutions) agree with the line
    rows = result.validation
    assert {(r["role"], r["resolution"]) for r in rows} == {("large", 8), ("small", 8), ("large", 16), ("small", 16)}
    assert all(abs(r["rel_error"]) < 1e-9 for r in rows)
    with open(result.out_dir / "validation.csv") as fh:
        header = next(csv.reader(fh))
    assert header[:7] == ["resolution", "batch_size", "data", "steps", "predicted_s", "measured_s", "rel_error"]
    with open(result.out_dir / "batch_times.csv") as fh:
        assert next(csv.reader(fh))[:3] == ["resolution", "batch_size", "seconds"]
    assert (result.out_dir / "fit.png").read_bytes()[:4] == b"\x89PNG"

    # Hydra finds the written profile as hardware=<name> (searchpath file://results/conf, relative to the cwd)
    monkeypatch.chdir(tmp_path)
    planned = compose(["experiment=smoke", "scheme=hybrid", "hardware=fake_line", "schedule.batch_large=null"])
    assert planned.hardware.kind == "linear" and "fake line device" in planned.hardware.description
    assert planned.hardware.resolutions[1].a == pytest.approx(LINES[16][0], rel=1e-9)
    plan = build_plan(planned, dataset_size(planned))
    assert {p.resolution: p.batch_large for p in plan.phases} == {8: 256, 16: 200}
    assert all(0 < p.batch_small < p.batch_large for p in plan.phases)


def test_rising_per_sample_cost_keeps_the_measured_table(compose, tmp_path):
    clock = FakeClock()
    # per-sample cost rises with B (as width 64 at 24-32 px on this CPU): the best line has a negative intercept
    bench = LineBench(clock, lambda r, b: 1e-4 * b + 4e-6 * b * b + 1e-3, {8: 0.1 * MIB, 16: 0.1 * MIB})
    cfg = smoke_cfg(compose, tmp_path)
    # timed sizes include the smoke plan's B_L (64 at 8 px, 32 at 16 px)
    result = run_calibration(cfg, fake_settings(batch_sizes=[8, 16, 32, 64, 128, 256]), "fake_curve", bench, 1024,
                             clock=clock, report=lambda _: None)
    assert result.kind == "table"
    # Table 4 at B_L (a measured size): the table is exact, the paper's line is not
    large = [r for r in result.validation if r["role"] == "large"]
    assert large and all(abs(r["rel_error"]) < 1e-9 and abs(r["line_rel_error"]) > 0.01 for r in large)
    assert all("negative intercept" in reason for reason in result.reasons) and len(result.reasons) == 2
    hw = load_profile(result.profile_path)
    assert hw.kind == "table" and hw.resolutions[0].batch_sizes == result.fits[0].batch_sizes
    text = result.profile_path.read_text()
    assert "kind=table: the line fits badly" in text and "negative intercept" in text
    cfg = smoke_cfg(compose, tmp_path)
    cfg.hardware = hw
    plan = build_plan(cfg, dataset_size(cfg))  # the table model solves Eq. 8 for B_S
    assert all(0 < p.batch_small < p.batch_large for p in plan.phases)
    with pytest.raises(ConfigError, match="--kind linear"):
        run_calibration(cfg, fake_settings(validate=False, kind="linear"), "fake_curve", bench, 1024, clock=clock,
                        report=lambda _: None)


def test_a_failed_calibration_leaves_the_previous_profile(compose, tmp_path):
    clock = FakeClock()
    cost = lambda r, b: LINES[r][0] * b + LINES[r][1]  # noqa: E731
    cfg = smoke_cfg(compose, tmp_path)
    slopes = {8: 0.1 * MIB, 16: 0.1 * MIB}
    good = run_calibration(cfg, fake_settings(validate=False), "fake_keep", LineBench(clock, cost, slopes), 1024,
                           clock=clock, report=lambda _: None)
    before = good.profile_path.read_text()
    with pytest.raises(RuntimeError, match="device lost"):
        run_calibration(cfg, fake_settings(validate=False), "fake_keep", LineBench(clock, cost, slopes, fail_at=16),
                        1024, clock=clock, report=lambda _: None)
    assert good.profile_path.read_text() == before
    assert not list(good.profile_path.parent.glob(".*.tmp"))


def test_search_grid_and_monotone_table():
    probes = []

    def fits(b):
        probes.append(b)
        return b <= 1000

    best = largest_fitting_batch(fits, 64, 1 << 16)
    assert 1000 - 1000 // 32 <= best <= 1000 and len(probes) < 20
    assert largest_fitting_batch(lambda b: b <= 40, 64, 512) in range(39, 41)
    assert largest_fitting_batch(lambda b: True, 64, 300) == 300
    with pytest.raises(ConfigError, match="model.width"):
        largest_fitting_batch(lambda b: False, 64, 512)
    assert batch_grid(8, 256, 10) == [8, 16, 32, 64, 96, 128, 160, 192, 224, 256]
    assert monotone([1.0, 3.0, 2.0, 4.0]) == [1.0, 2.5, 2.5, 4.0]


@pytest.mark.parametrize("args, key", [
    (["--name", "a/b"], "--name"),
    (["--name", "cpu_w16"], "ships a profile"),
    (["--resolutions", "2"], "--resolutions"),
    (["--batch-sizes", "8,16"], "--batch-sizes"),
])
def test_bad_options_name_the_option(args, key, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["experiment=smoke", *args]) == 2
    assert key in capsys.readouterr().err


@pytest.mark.slow
def test_quick_calibration_of_a_tiny_model_on_cpu(tmp_path, compose, monkeypatch):
    """The real thing: python -m dbsl.calibrate --quick times LocalTrainer steps on the CPU and writes a profile
    that hardware=<name> turns into a plan (the smoke baseline trains at 16 px only)."""
    cmd = [sys.executable, "-m", "dbsl.calibrate", "experiment=smoke", "train.threads=1", "--quick",
           "--name", "tiny_cpu", "--resolutions", "16", "--batch-sizes", "16,24,32", "--repeats", "2"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert "use it with hardware=tiny_cpu" in proc.stderr and "Table-4 check" in proc.stderr
    profile = tmp_path / "results" / "conf" / "hardware" / "tiny_cpu.yaml"
    hw = load_profile(profile)
    assert [p.resolution for p in hw.resolutions] == [16]
    assert all(p.batch_large == 32 and len(p.batch_sizes) >= 3 and min(p.batch_times) > 0 for p in hw.resolutions)
    assert "torch" in hw.description and "calibrated 20" in hw.description
    out = tmp_path / "results" / "calibration" / "tiny_cpu"
    with open(out / "validation.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(float(r["measured_s"]) > 0 and float(r["predicted_s"]) > 0 for r in rows)
    monkeypatch.chdir(tmp_path)
    cfg = compose(["experiment=smoke", "hardware=tiny_cpu", "schedule.batch_large=null"])
    plan = build_plan(cfg, dataset_size(cfg))
    assert plan.hardware == "tiny_cpu" and {p.batch_large for p in plan.phases} == {32}
