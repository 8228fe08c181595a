"""The Hydra app end to end: a default run, the four schemes in one multirun, progress output."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from dbsl.record import METRIC_COLUMNS, find_runs, read_metric_rows


def test_default_run_on_synthetic_data_writes_a_complete_record(run_cli, tmp_path):
    proc = run_cli("dataset=synthetic", "dataset.synthetic_train=1024", "dataset.synthetic_test=128")
    (run_dir,) = find_runs(tmp_path / "results")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["scheme"] == "baseline"
    for name in ("config.yaml", "plan.json", "metrics.csv", "summary.json"):
        assert (run_dir / name).is_file()
    table = read_metric_rows(run_dir / "metrics.csv")
    assert len(table) == summary["total_commits"] == 32
    assert list(table[0]) == list(METRIC_COLUMNS)
    assert summary["final"]["commit"] == 31 and 0 < summary["final"]["test_top1"] <= 1
    assert summary["best"]["test_top1"] >= summary["final"]["test_top1"]
    assert summary["versions"]["torch"] and "git_commit" in summary
    # not a terminal: no progress bar, one log line per epoch
    log = proc.stdout + proc.stderr
    assert sum("epoch " in line and "/8 " in line for line in log.splitlines()) == 8
    assert "commit/s" not in log


def test_four_schemes_in_one_multirun(run_cli, tmp_path):
    run_cli("-m", "experiment=smoke", "scheme=baseline,dbsl,cpl,hybrid", "sweep_name=schemes", "model.width=2",
            "dataset.synthetic_train=512", "dataset.synthetic_test=64")
    runs = find_runs(tmp_path / "results" / "sweeps" / "schemes")
    summaries = {json.loads((r / "summary.json").read_text())["scheme"]: r for r in runs}
    assert sorted(summaries) == ["baseline", "cpl", "dbsl", "hybrid"]
    for scheme, run_dir in summaries.items():
        summary = json.loads((run_dir / "summary.json").read_text())
        plan = json.loads((run_dir / "plan.json").read_text())
        assert summary["status"] == "completed"
        assert len(read_metric_rows(run_dir / "metrics.csv")) == 24
        assert (plan["num_small"] > 0) == (scheme in ("dbsl", "hybrid"))
        assert (len({p["resolution"] for p in plan["phases"]}) > 1) == (scheme in ("cpl", "hybrid"))


def test_progress_bar_on_a_terminal(tmp_path):
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    cmd = [sys.executable, "-m", "dbsl.run", "experiment=smoke", "schedule.epochs=2", "optim.lr_milestones=[1]",
           "schedule.cycle_ends=[]", f"results_dir={tmp_path}"]
    proc = subprocess.Popen(cmd, stdin=child, stdout=child, stderr=child, cwd=tmp_path, close_fds=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    os.close(child)
    out = b""
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:
            break
        if not data:
            break
        out += data
    assert proc.wait(timeout=120) == 0, out.decode(errors="replace")
    text = out.decode(errors="replace")
    assert "8/8 [" in text and "commit" in text, text  # tqdm's bar, at its end
    assert "epoch 2/2" in text
