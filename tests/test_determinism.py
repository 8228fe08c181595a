"""Which kernels a CPU run uses, and pinning them so that runs agree across x86 machines (README "Determinism")."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
FAST = ["experiment=smoke", "model.width=8", "dataset.synthetic_train=256", "dataset.synthetic_test=64",
        "schedule.epochs=1", "optim.lr_milestones=[]", "schedule.cycle_ends=[]", "train.threads=1"]


def run(tmp_path: Path, name: str, *overrides: str, env: dict | None = None):
    out = tmp_path / name
    proc = subprocess.run([sys.executable, "-m", "dbsl.run", *FAST, *overrides, f"hydra.run.dir={out}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert proc.returncode == 0, proc.stderr
    with open(out / "metrics.csv") as fh:
        losses = [r["train_loss"] for r in csv.DictReader(fh)]
    return json.loads((out / "summary.json").read_text()), losses


def test_cpu_isa_avx2_equals_the_kernels_pinned_from_outside(tmp_path):
    # the config option must give exactly what the documented environment variables give when set before start
    pinned_env = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    outside, outside_losses = run(tmp_path, "outside", env=pinned_env)
    option, option_losses = run(tmp_path, "option", "train.cpu_isa=avx2")
    assert outside["environment"]["cpu_capability"] == "AVX2"
    assert option["environment"]["cpu_capability"] == "AVX2"
    assert option["environment"]["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert option_losses == outside_losses  # bit for bit
    native, _ = run(tmp_path, "native")
    import torch

    assert native["environment"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert native["environment"]["cpu"] and native["environment"]["threads"] == 1


@pytest.mark.skipif(not torch.backends.cpu.get_cpu_capability().startswith("AVX512"),
                    reason="on a CPU without AVX-512 the capped and the native kernels are the same: nothing to tell")
def test_cpu_isa_avx2_caps_the_workers_of_a_torchrun_run_too(tmp_path):
    """torchrun starts every rank with the user's environment: the workers must cap their kernels themselves, or
    (on an AVX-512 machine such as this one) the server's avx2 record hides workers that trained with AVX-512.
    BSP with one thread per process: the distributed run must equal, bit for bit, a simulated run whose kernels are
    capped from outside."""
    tiny = ["experiment=smoke", "scheme=hybrid", "ps.num_workers=2", "dbsl.num_small=1", "dataset.synthetic_train=256",
            "dataset.synthetic_test=64", "schedule.epochs=4", "optim.lr_milestones=[2]", "schedule.cycle_ends=[1,2,3,4]",
            "train.eval_every=2", "train.threads=1", "logger.progress=false", "ps.sync=BSP"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for var in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        env.pop(var, None)
    torchrun = Path(sys.executable).with_name("torchrun")
    dist = tmp_path / "dist"
    done = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "3", "-m", "dbsl.run",
                           "executor=distributed", *tiny, "train.cpu_isa=avx2", f"hydra.run.dir={dist}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    sim = tmp_path / "sim"
    done = subprocess.run([sys.executable, "-m", "dbsl.run", *tiny, f"hydra.run.dir={sim}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**env, "ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert done.returncode == 0, done.stderr[-3000:]

    def losses(run):
        with open(run / "metrics.csv") as fh:
            return [(r["commit"], r["train_loss"], r["test_loss"]) for r in csv.DictReader(fh)]

    assert len(losses(dist)) == 8 and losses(dist) == losses(sim)  # every commit's losses, to the last digit
