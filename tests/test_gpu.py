"""The GPU self-check (`just gpu-check`, dbsl.gpucheck): with CUDA every check must pass; without it the command says
"skipped: no CUDA" and exits 0. The check's own code also runs here on the CPU (--cpu), where AMP does not apply."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dbsl.cli.gpucheck import main

ROOT = Path(__file__).resolve().parents[1]


def gpucheck(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dbsl.gpucheck", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_without_cuda_it_says_skipped_and_exits_0(tmp_path, capsys):
    proc = gpucheck("--out", str(tmp_path / "out"), CUDA_VISIBLE_DEVICES="")  # no GPU visible, even on a GPU box
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "skipped: no CUDA"
    assert not (tmp_path / "out").exists()  # nothing to attach: nothing written
    assert main(["--only", "nope"]) == 2  # a bad name is refused before CUDA is looked at, GPU or not
    assert "--only nope: no such check" in capsys.readouterr().err


def test_the_checks_run_on_the_cpu(tmp_path):
    assert main(["--cpu", "--only", "evaluation,resume_simulated", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["passed"] and report["device"] == "cpu"
    assert [(c["name"], c["status"]) for c in report["checks"]] == [("evaluation", "passed"),
                                                                     ("resume_simulated", "passed")]
    resumed = report["checks"][1]["details"]
    assert resumed["resumed"]["resumed_from_commit"] > 0
    assert resumed["final_test_loss_rel_difference"] == 0.0  # the simulated executor resumes bit for bit on the CPU
    assert "| evaluation | passed |" in (tmp_path / "gpu_check.md").read_text()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_check_passes(tmp_path):
    status = main(["--out", str(tmp_path)])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    failed = [c for c in report["checks"] if c["status"] == "failed"]
    assert status == 0 and not failed, json.dumps(failed, indent=2, default=str)[:4000]
    by_name = {c["name"]: c["status"] for c in report["checks"]}
    assert by_name["distributed_per_gpu"] == ("passed" if torch.cuda.device_count() >= 2 else "skipped")
