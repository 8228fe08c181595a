"""The simulated executor: merge order on the virtual clock, determinism, resume, sync modes."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbsl.plan import build_plan
from dbsl.one_run import execute

TIME_COLUMNS = {"wall_time", "compute_time", "seconds", "cpu_seconds", "measured_time"}
FAST = ["experiment=smoke", "model.width=2", "dataset.synthetic_train=512", "dataset.synthetic_test=64"]


def rows(run_dir):
    with open(Path(run_dir) / "metrics.csv") as fh:
        return list(csv.DictReader(fh))


def without_time(table):
    return [{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in table]


def run(compose, tmp_path, name, *overrides):
    cfg = compose(FAST + list(overrides) + [f"output_dir={tmp_path / name}"])
    return cfg, execute(cfg)


def test_merge_order_follows_virtual_finish_times(compose, tmp_path):
    # two workers of unequal speed: a small-batch worker (rank 1) and a large-batch one (rank 2)
    cfg, summary = run(compose, tmp_path, "order", "scheme=dbsl", "ps.num_workers=2", "dbsl.num_small=1",
                       "dbsl.extra_time_ratio=1.3", "schedule.resolutions=[16]", "schedule.dropouts=[0.1]",
                       "schedule.batch_large=[32]", "schedule.cycle_ends=[]", "train.eval_every=100")
    plan = build_plan(cfg, 512)
    duration = {r: plan.mini_epoch_time(r, plan.phases[0]) for r in (1, 2)}
    assert duration[1] != pytest.approx(duration[2])  # they do differ
    # an independent event simulation: each worker restarts as soon as it pushes; ties go to the lower rank
    finish, expected = dict(duration), []
    while len(expected) < plan.total_commits:
        rank = min(finish, key=lambda r: (finish[r], r))
        expected.append((rank, finish[rank]))
        finish[rank] += duration[rank]
    got = [(int(r["worker"]), float(r["modelled_time"])) for r in rows(summary["run_dir"])]
    assert [g[0] for g in got] == [e[0] for e in expected]
    assert [g[1] for g in got] == pytest.approx([e[1] for e in expected])
    assert summary["modelled_time"] == pytest.approx(expected[-1][1])


def test_same_seed_same_metrics_other_seed_differs(compose, tmp_path):
    _, a = run(compose, tmp_path, "a", "scheme=hybrid", "executor.jitter=0.2")
    _, b = run(compose, tmp_path, "b", "scheme=hybrid", "executor.jitter=0.2")
    _, c = run(compose, tmp_path, "c", "scheme=hybrid", "executor.jitter=0.2", "seed=1")
    ra, rb, rc = rows(a["run_dir"]), rows(b["run_dir"]), rows(c["run_dir"])
    assert len(ra) == 24 and ra[-1]["test_top1"] != ""
    assert without_time(ra) == without_time(rb)  # bit for bit, every loss, accuracy and modelled time
    assert without_time(ra) != without_time(rc)
    assert {k: v for k, v in a["best"].items() if k != "wall_time"} == \
        {k: v for k, v in b["best"].items() if k != "wall_time"}
    assert a["status"] == "completed"


@pytest.mark.parametrize("sync", ["BSP", "SSP"])
def test_sync_modes_complete(compose, tmp_path, sync):
    _, summary = run(compose, tmp_path, sync, "scheme=dbsl", f"ps.sync={sync}", "ps.staleness=0",
                     "executor.jitter=0.5")
    table = rows(summary["run_dir"])
    assert summary["status"] == "completed" and len(table) == 24
    counts = {}
    for r in table:  # BSP rounds, and SSP with staleness 0, keep every worker within one push of the others
        counts[r["worker"]] = counts.get(r["worker"], 0) + 1
        assert max(counts.values()) - min(counts.get(str(w), 0) for w in range(1, 5)) <= 1
    if sync == "BSP":
        evaluated = [int(r["commit"]) for r in table if r["test_top1"]]
        assert all((c + 1) % 4 == 0 for c in evaluated)  # one evaluation per round, after its last push
    # the measured clock replays mini-epochs back to back, which a barrier's waits would break: not kept
    assert summary["measured_clock"] is None and summary["measured_time"] is None
    assert all(r["measured_time"] == "" for r in table)


def test_measured_clock_replays_each_workers_mini_epochs(run_cli, tmp_path):
    import json

    run_cli(*FAST, "scheme=dbsl", "executor.jitter=0.3", "train.threads=1")  # one thread: CPU seconds
    [summary_path] = (tmp_path / "results").rglob("summary.json")
    summary = json.loads(summary_path.read_text())
    table = rows(summary_path.parent)
    assert summary["measured_clock"] == "cpu" and summary["environment"]["threads"] == 1
    clock = {}
    for r in table:
        cpu, wall = float(r["cpu_seconds"]), float(r["seconds"])
        assert 0 < cpu <= wall * 1.05 + 0.005  # one thread cannot burn more CPU time than wall time
        worker = r["worker"]
        clock[worker] = clock.get(worker, 0.0) + cpu  # each worker's mini-epochs back to back
        assert float(r["measured_time"]) == pytest.approx(clock[worker])
    assert summary["measured_time"] == pytest.approx(max(clock.values()))


def test_completed_run_is_skipped(compose, tmp_path):
    cfg, first = run(compose, tmp_path, "skip", "schedule.epochs=2", "optim.lr_milestones=[1]",
                     "schedule.cycle_ends=[]")
    again = execute(cfg)
    assert again.get("skipped") and again["finished"] == first["finished"]
    assert not (Path(first["run_dir"]) / "checkpoint.pt").exists()


def test_a_run_killed_inside_its_first_phase_resumes_from_a_timed_checkpoint(tmp_path):
    # one LR stage and one CPL stage: the only checkpoints are the timed ones (every 0.0005 min = 30 ms of wall time)
    args = FAST + ["schedule.epochs=6", "optim.lr_milestones=[]", "schedule.cycle_ends=[]",
                   "schedule.resolutions=[16]", "schedule.dropouts=[0.1]", "schedule.batch_large=[32]",
                   "checkpoint_minutes=0.0005", "logger.progress=false", "train.threads=1"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    victim = tmp_path / "victim"

    def start(out=victim, *more):
        return subprocess.Popen([sys.executable, "-m", "dbsl.run", *args, *more, f"hydra.run.dir={out}"],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    proc, deadline = start(), time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (victim / "checkpoint.pt").exists():
        time.sleep(0.02)
    assert proc.poll() is None, "no checkpoint before the run's end"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # side by side: the resumed run, and the same run uninterrupted with no timed checkpoints
    resumed, reference = start(), start(tmp_path / "reference", "checkpoint_minutes=0")
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read()
    assert reference.wait(timeout=240) == 0, reference.stderr.read()
    import json

    summary = json.loads((victim / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from_commit"] > 0
    assert len(rows(victim)) == 24 and without_time(rows(victim)) == without_time(rows(tmp_path / "reference"))


def test_killed_run_resumes_to_the_same_result(tmp_path):
    args = FAST + ["scheme=hybrid", "schedule.epochs=12", "optim.lr_milestones=[8]",
                   "schedule.cycle_ends=[4,8,10,12]", "checkpoint_every=2", "executor.jitter=0.3",
                   "logger.progress=false", "train.threads=1"]  # one thread: two runs side by side below
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def start(out):
        return subprocess.Popen([sys.executable, "-m", "dbsl.run", *args, f"hydra.run.dir={out}"], cwd=tmp_path,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    victim = tmp_path / "victim"
    proc = start(victim)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (victim / "checkpoint.pt").exists() and len(rows(victim)) >= 10:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    import json

    interrupted = json.loads((victim / "summary.json").read_text())
    assert interrupted["status"] == "running"  # a killed run never looks complete
    done_before = len(rows(victim))
    assert done_before < 48
    resumed, reference = start(victim), start(tmp_path / "reference")  # side by side: two cores
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read()
    assert reference.wait(timeout=240) == 0, reference.stderr.read()
    summary = json.loads((victim / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from_commit"] > 0
    assert without_time(rows(victim)) == without_time(rows(tmp_path / "reference"))
