"""A golden simulated run: what the simulated executor records must not change when the code is reorganised.

The files in ``tests/golden/`` were written by this module (``python tests/test_golden_run.py``) at commit b49df88,
before the modelled clock was moved out of the executors (issue 28), on an AMD EPYC (family 25, model 17) with one
torch thread and ``train.cpu_isa=avx2``. The schedule (who pushed when, at which phase, LR and modelled time, which
commits were tested) must match exactly on any machine. The losses and accuracies must match bit for bit on a CPU of
the same vendor, family and model; elsewhere float kernels may round differently, so they must agree within 1e-5
relative (a changed merge order or a changed random stream moves them by far more).
"""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"
SETUP = ["experiment=smoke", "model.width=2", "dataset.synthetic_train=512", "dataset.synthetic_test=64",
         "train.threads=1", "train.cpu_isa=avx2"]
RUNS = {  # the three sync rules, with jitter so that pushes interleave and SSP holds workers
    "asp_hybrid": ["scheme=hybrid", "executor.jitter=0.2"],
    "ssp_dbsl": ["scheme=dbsl", "ps.sync=SSP", "ps.staleness=0", "executor.jitter=0.3", "train.eval_every=3"],
    "bsp_cpl": ["scheme=cpl", "ps.sync=BSP", "train.eval_final_epochs=1"],
}
TIME_COLUMNS = {"wall_time", "compute_time", "seconds", "cpu_seconds", "measured_time"}
SCHEDULE = ["commit", "epoch", "worker", "small", "phase", "lr_stage", "resolution", "dropout", "lr", "batch_size",
            "samples", "modelled_time"]


def cpu_identity() -> dict:
    fields = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("vendor_id", "cpu family", "model") and key not in fields:
            fields[key] = value.strip()
    return fields


def record(compose, out: Path, name: str) -> list[dict]:
    from dbsl.one_run import execute

    summary = execute(compose(SETUP + RUNS[name] + [f"output_dir={out / name}"]))
    with open(Path(summary["run_dir"]) / "metrics.csv") as fh:
        return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in csv.DictReader(fh)]


def write(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def record_all(folder: Path) -> None:
    """The three runs in a fresh process whose kernels are capped to AVX2 from the start (train.cpu_isa=avx2 must
    be set before a process computes anything), their metrics (without the clocks of this machine) in ``folder``."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
           "PYTHONPATH": str(GOLDEN.parent.parent)}
    subprocess.run([sys.executable, __file__, str(folder)], env=env, check=True, timeout=900)


def golden(name: str, folder: Path = GOLDEN) -> list[dict]:
    with open(folder / f"{name}.csv") as fh:
        return list(csv.DictReader(fh))


def same_number(a: str, b: str, exact: bool) -> bool:
    if a == b:
        return True
    if exact or a == "" or b == "":
        return False
    return math.isclose(float(a), float(b), rel_tol=1e-5, abs_tol=1e-7)


def test_simulated_runs_record_what_they_recorded_before(tmp_path):
    record_all(tmp_path)
    exact = cpu_identity() == json.loads((GOLDEN / "machine.json").read_text())
    for name in sorted(RUNS):
        got, want = golden(name, tmp_path), golden(name)
        assert len(got) == len(want) and list(got[0]) == list(want[0]), name
        for g, w in zip(got, want):
            assert [g[k] for k in SCHEDULE] == [w[k] for k in SCHEDULE], f"{name}: schedule differs at {w['commit']}"
            wrong = [k for k in w if k not in SCHEDULE and not same_number(g[k], w[k], exact)]
            assert not wrong, f"{name} commit {w['commit']}: {wrong} differ ({'bit for bit' if exact else '1e-5'})"


def test_the_comparison_can_fail():
    assert not same_number("0.5", "0.50001", exact=False)  # 2e-5 relative: outside the tolerance
    assert same_number("0.5", "0.500001", exact=False) and not same_number("0.5", "0.500001", exact=True)
    assert not same_number("", "0.5", exact=False)


if __name__ == "__main__":  # python tests/test_golden_run.py [FOLDER]: record the runs (default: the golden files)
    import tempfile

    from dbsl.compose import compose_config

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN
    if target == GOLDEN and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        sys.exit("run it as: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python tests/test_golden_run.py")
    with tempfile.TemporaryDirectory() as tmp:
        for run_name in RUNS:
            write(record(compose_config, Path(tmp), run_name), target / f"{run_name}.csv")
    if target == GOLDEN:
        (GOLDEN / "machine.json").write_text(json.dumps(cpu_identity(), indent=1) + "\n")
