"""Shared fixtures: composed configs and short real runs on synthetic data."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HYDRA_FULL_ERROR", "0")
os.environ.setdefault("DBSL_CACHE_DIR", str(Path(tempfile.gettempdir()) / f"dbsl-test-cache-{os.getpid()}"))


@pytest.fixture
def compose():
    from dbsl.compose import compose_config

    return compose_config


@pytest.fixture
def run_cli(tmp_path):
    """Run `python -m dbsl.run` in a subprocess (real Hydra app) with results under tmp_path."""
    import subprocess

    def _run(*overrides: str, multirun: bool = False, check: bool = True, timeout: float = 600):
        cmd = [sys.executable, "-m", "dbsl.run"] + (["-m"] if multirun else []) + list(overrides)
        if not any(o.startswith("results_dir=") for o in overrides):
            cmd.append(f"results_dir={tmp_path / 'results'}")
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return _run
