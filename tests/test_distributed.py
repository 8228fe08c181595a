"""The distributed executor for real: a server and 2 worker processes on 127.0.0.1 over torch.distributed.rpc,
writing real run records. Every run is tiny (width 4, 256 synthetic images, 8 commits); most of each run's time
is the workers importing torch."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from dbsl.config import ConfigError
from dbsl.ps.launch import Role, check_world_size, torchrun_worker
from dbsl.ps.remote_worker import FAULT_ENV, injected_fault
from dbsl.record import find_runs, read_metric_rows, read_summary
from dbsl.one_run import execute

ROOT = Path(__file__).resolve().parents[1]
# hybrid on 2 workers (worker 1 small-batch, so the workers differ in speed), 4 phases (an LR step and the
# 8 -> 16 px cycle), tests at commits 1, 3, 5, 7
TINY = ["experiment=smoke", "scheme=hybrid", "ps.num_workers=2", "dbsl.num_small=1", "dataset.synthetic_train=256",
        "dataset.synthetic_test=64", "schedule.epochs=4", "optim.lr_milestones=[2]", "schedule.cycle_ends=[1,2,3,4]",
        "train.eval_every=2", "train.threads=1", "logger.progress=false"]
COMMITS = 8
TIMEOUT = 20  # executor.timeout of these runs (seconds)


def _run(compose, tmp_path, name: str, *overrides: str) -> tuple[dict, list[dict]]:
    out = tmp_path / name
    summary = execute(compose(TINY + [f"output_dir={out}", *overrides]))
    return summary, read_metric_rows(out / "metrics.csv")


def _check_complete(summary: dict, rows: list[dict]) -> None:
    assert summary["status"] == "completed"
    assert [int(r["commit"]) for r in rows] == list(range(COMMITS))  # every commit once, in commit order
    tested = [int(r["commit"]) for r in rows if r["test_top1"]]
    assert tested == [1, 3, 5, 7]
    assert {r["worker"] for r in rows} == {"1", "2"}
    workers = summary["workers"]
    assert set(workers) == {"1", "2"}
    for times in workers.values():
        assert times["mini_epochs"] >= 1 and times["compute"] > 0 and times["communication"] > 0
        assert all(times[k] >= 0 for k in ("evaluation", "waiting"))
    assert sum(t["evaluation"] for t in workers.values()) > 0  # the workers tested the merged models
    assert 0 < summary["training_time"] < summary["wall_time"]
    assert summary["final"]["commit"] == COMMITS - 1


def _processes_with(token: str) -> list[int]:
    """Processes (any parent: orphans are re-parented) whose environment carries ``token``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if token.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _worker_processes() -> list[int]:
    """Live processes forked by this session's multiprocessing fork server (the one-machine workers)."""
    procs = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
                procs[int(entry.name)] = (int(ppid), state, (entry / "cmdline").read_bytes())
            except OSError:
                pass
    servers = {pid for pid, (ppid, _, cmd) in procs.items() if ppid == os.getpid() and b"forkserver" in cmd}
    return [pid for pid, (ppid, state, _) in procs.items() if ppid in servers and state != "Z"]


def test_bsp_equals_simulated_bsp(compose, tmp_path):
    """Same seed, BSP, one thread per worker: the same global model after every round (train losses of every
    commit and the tests of the merged models agree), and the same modelled clock."""
    dist, dist_rows = _run(compose, tmp_path, "distributed", "ps.sync=BSP", "executor=distributed",
                           f"executor.timeout={TIMEOUT}")
    _check_complete(dist, dist_rows)
    assert sum(t["waiting"] for t in dist["workers"].values()) > 0  # the barrier held someone
    sim, sim_rows = _run(compose, tmp_path, "simulated", "ps.sync=BSP")
    assert len(sim_rows) == len(dist_rows) == COMMITS
    for s, d in zip(sim_rows, dist_rows):
        for key in ("commit", "worker", "phase", "resolution", "batch_size", "samples", "modelled_time"):
            assert s[key] == d[key], (key, s, d)
        for key in ("train_loss", "train_acc", "test_loss", "test_top1"):
            if s[key] or d[key]:
                assert math.isclose(float(s[key]), float(d[key]), rel_tol=1e-5, abs_tol=1e-6), (key, s, d)
    assert sim["final"]["test_loss"] == pytest.approx(dist["final"]["test_loss"], rel=1e-5)
    # both executors keep the final global model (final.pt, issue 26): the same model, as the tests of it agree
    import torch

    dist_final = torch.load(tmp_path / "distributed" / "final.pt", weights_only=True)
    sim_final = torch.load(tmp_path / "simulated" / "final.pt", weights_only=True)
    assert dist_final.keys() == sim_final.keys()
    for key, value in sim_final.items():
        if value.is_floating_point():
            assert torch.allclose(dist_final[key], value, rtol=1e-4, atol=1e-5), key


@pytest.mark.parametrize("sync", ["ASP", "SSP"])
def test_asynchronous_runs_complete(compose, tmp_path, sync):
    summary, rows = _run(compose, tmp_path, sync, f"ps.sync={sync}", "ps.staleness=0", "executor=distributed",
                         f"executor.timeout={TIMEOUT}")
    _check_complete(summary, rows)
    assert summary["executor"] == "distributed" and summary["sync"] == sync
    if sync == "SSP":  # staleness 0: no worker ever leads the other by more than the push it just made
        pushes = {"1": 0, "2": 0}
        for row in rows:
            pushes[row["worker"]] += 1
            assert abs(pushes["1"] - pushes["2"]) <= 1, rows


def test_killed_worker_fails_fast_leaves_nothing_behind_and_resumes(compose, tmp_path):
    """Worker 2 is SIGKILLed after its 3rd push: the Hydra app fails naming worker 2 and the last commit, well
    within the timeout, with no process left; the record is failed and keeps its rows; resume completes the run."""
    token = f"dbsl-test-{uuid.uuid4()}"
    # 40 epochs (80 commits): after worker 2's death at about commit 5, worker 1 alone would need some 75 mini-epochs
    # to end the run, far longer than the server takes to notice (with 8 commits a fast machine finished first)
    longer = [o for o in TINY if not o.startswith(("schedule.epochs=", "schedule.cycle_ends=", "optim.lr_milestones="))]
    longer += ["schedule.epochs=40", "schedule.cycle_ends=[]", "optim.lr_milestones=[20]"]
    commits = 80
    overrides = longer + ["executor=distributed", f"executor.timeout={TIMEOUT}", "checkpoint_every=2",
                          f"results_dir={tmp_path / 'results'}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), FAULT_ENV: "2:3", "DBSL_TEST_TOKEN": token}
    proc = subprocess.run([sys.executable, "-m", "dbsl.run", *overrides], cwd=tmp_path, capture_output=True,
                          text=True, timeout=180, env=env)
    assert proc.returncode == 1  # a failed run (2 is bad input)
    # one line that names the worker, where the run stopped and the way on; no traceback
    [line] = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert line.startswith("error: worker 2 died (exit code -9); its last commit was "), proc.stderr[-3000:]
    assert "the server's last commit was" in line and line.endswith("resume from the last checkpoint)")
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    deadline = time.monotonic() + 5  # the fork server leaves when its parent does: allow it a moment
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(token) == []  # no process of the run outlived it
    [run_dir] = find_runs(tmp_path / "results")
    summary = read_summary(run_dir)
    assert summary["status"] == "failed" and "worker 2 died" in summary["error"]
    assert set(summary["workers"]) == {"1", "2"}
    rows = read_metric_rows(run_dir / "metrics.csv")
    assert 3 <= len(rows) < commits
    assert summary["wall_time"] - max(float(r["wall_time"]) for r in rows) < TIMEOUT  # detected within the timeout
    assert (run_dir / "checkpoint.pt").exists()

    resumed = execute(compose(longer + ["executor=distributed", f"executor.timeout={TIMEOUT}", "checkpoint_every=2",
                                        f"output_dir='{run_dir}'"]))
    assert resumed["status"] == "completed" and resumed["resumed_from_commit"] >= 2
    rows = read_metric_rows(run_dir / "metrics.csv")
    assert [int(r["commit"]) for r in rows] == list(range(commits))
    assert not (run_dir / "checkpoint.pt").exists()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def test_silent_worker_ends_a_bsp_run_within_the_timeout(compose, tmp_path, monkeypatch):
    """Worker 2 hangs after its first push: the barrier cannot close; the run fails once worker 2 has been silent
    for executor.timeout seconds, naming it and the last commit, and both worker processes are gone."""
    monkeypatch.setenv(FAULT_ENV, "2:1:hang")
    timeout = 4
    cfg = compose(TINY + ["ps.sync=BSP", "executor=distributed", f"executor.timeout={timeout}",
                          f"output_dir={tmp_path / 'silent'}"])
    with pytest.raises(RuntimeError, match=r"worker 2 stopped answering: nothing for \d+ s \(executor.timeout=4\); "
                                           r"its last commit was 1, the server's last commit was 1 of 8"):
        execute(cfg)
    assert _worker_processes() == []
    summary = read_summary(tmp_path / "silent")
    assert summary["status"] == "failed" and "worker 2 stopped answering" in summary["error"]
    rows = read_metric_rows(tmp_path / "silent" / "metrics.csv")
    assert [r["commit"] for r in rows] == ["0", "1"]  # the one round before the hang (its test never came)
    # failed `timeout` seconds after worker 2's last push (the end of round 1), not at once nor much later
    assert timeout - 1 <= summary["wall_time"] - float(rows[0]["wall_time"]) <= timeout + 15


def test_worker_dying_at_start_up_fails_at_once(compose, tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "1:0")
    cfg = compose(TINY + ["executor=distributed", "executor.timeout=600", f"output_dir={tmp_path / 'start'}"])
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match=r"worker 1 died while starting \(exit code -9\), before joining the run"):
        execute(cfg)
    assert time.perf_counter() - start < 120  # not the 600 s timeout
    assert _worker_processes() == []
    assert read_summary(tmp_path / "start")["status"] == "failed"


def test_torchrun_world_size_must_match_the_workers():
    role = Role(rank=0, world_size=3, local_rank=0, local_world_size=1, master_addr="127.0.0.1", master_port=29500)
    check_world_size(role, 2)
    with pytest.raises(ConfigError, match=r"ps.num_workers=4.*set ps.num_workers=2 or launch 5 processes"):
        check_world_size(role, 4)


def test_torchrun_worker_is_a_rank_above_zero_of_a_full_torchrun_environment(monkeypatch):
    env = {"RANK": "2", "WORLD_SIZE": "3", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert torchrun_worker()
    monkeypatch.setenv("RANK", "0")  # the server
    assert not torchrun_worker()
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("MASTER_PORT")  # not launched by torchrun (a stray RANK variable)
    assert not torchrun_worker()


def test_fault_injection_spec(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "2:3")
    assert injected_fault(2) == (3, "kill") and injected_fault(1) is None
    monkeypatch.setenv(FAULT_ENV, "1:0:hang")
    assert injected_fault(1) == (0, "hang")
    monkeypatch.setenv(FAULT_ENV, "two")
    with pytest.raises(ValueError, match=FAULT_ENV):
        injected_fault(1)


def test_torchrun_multirun_is_reported_once_by_the_server(tmp_path):
    """torchrun starts the whole Hydra multirun in every rank: ranks 1..n serve as workers run after run, and only
    rank 0 (the server) writes the job outcomes and the sweep summary."""
    torchrun = Path(sys.executable).with_name("torchrun")
    overrides = [o for o in TINY if not o.startswith("schedule.") and not o.startswith("optim.")]
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "3", "-m", "dbsl.run", "-m", "executor=distributed",
           *overrides, "schedule.epochs=2", "optim.lr_milestones=[]", "schedule.cycle_ends=[1,2]",
           f"results_dir={tmp_path}", "sweep_name=tr", "seed=0,1"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "sweeps" / "tr" / "sweep_summary.json").read_text())
    runs = sorted(summary["runs"].values(), key=lambda r: r["overrides"][-1])
    assert [r["overrides"][-1] for r in runs] == ["seed=0", "seed=1"]
    for run in runs:
        record = read_summary(Path(run["run_dir"]))
        assert run["status"] == record["status"] == "completed" and record["executor"] == "distributed"
        assert run["best_test_top1"] == record["best"]["test_top1"]  # the server's outcome, not a worker's
    assert (done.stdout + done.stderr).count("sweep tr: ") == 1  # one table, from rank 0
    assert "pipe closed" not in done.stderr and "eof (this error" not in done.stderr  # a quiet normal shutdown


def test_a_resumed_service_puts_the_restarted_mini_epochs_where_the_uninterrupted_run_has_them(compose, tmp_path):
    """The server's modelled clock across a checkpoint (ASP, no processes: the service's handlers called here).
    Worker 1 (small batch) takes t_S, worker 2 (large) t_L < t_S. Worker 2 pushes first (commit 0, at t_L) and the
    checkpoint is taken there, while worker 1's mini-epoch is in flight. A resumed run retrains that mini-epoch from
    the start of the clock, so its push must land at t_S, as in the run without the interruption (not at 2 t_S)."""
    import torch

    from dbsl.data import load_dataset
    from dbsl.monitor import Monitor
    from dbsl.plan import build_plan
    from dbsl.ps.context import RunContext
    from dbsl.ps.remote_server import ParameterService
    from dbsl.record import RunRecord
    from dbsl.stats import TrainStats

    def service(name, checkpoint=None):
        cfg = compose(["experiment=smoke", "model.width=2", "dataset.synthetic_train=256", "dataset.synthetic_test=64",
                       "scheme=dbsl", "ps.num_workers=2", "dbsl.num_small=1", "dbsl.extra_time_ratio=1.3",
                       "train.eval_every=100", f"output_dir={tmp_path / name}"])
        source = load_dataset(cfg.dataset, cfg.seed)
        plan = build_plan(cfg, len(source.train))
        record = RunRecord(tmp_path / name)
        record.open_metrics()
        ctx = RunContext(cfg, plan, source, torch.device("cpu"), record)
        ctx.monitor = Monitor(plan, record, progress=False)
        return ParameterService(ctx, checkpoint), plan

    stats = TrainStats(loss=1.0, acc=0.0, samples=1, steps=1, seconds=0.0)
    first, plan = service("first")
    t_small, t_large = (plan.mini_epoch_time(r, plan.phases[0]) for r in (1, 2))
    assert t_large < t_small
    for rank in (1, 2):
        first.pull(rank, None, None, {}).wait()
    first.push(2, first.server.state, stats).wait()
    checkpoint = dict(first.state_dict(0), monitor=first.ctx.monitor.state_dict())
    resumed, _ = service("resumed", checkpoint)
    for rank in (1, 2):  # after a resume every worker pulls again
        resumed.pull(rank, None, None, {}).wait()
    first.push(1, first.server.state, stats).wait()
    resumed.push(1, resumed.server.state, stats).wait()
    assert first.clock.finish[1] == pytest.approx(t_small)
    assert resumed.clock.finish[1] == pytest.approx(t_small)
