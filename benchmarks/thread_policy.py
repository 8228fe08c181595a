"""Benchmark 6 (context for the others): torch's CPU threads and OpenMP's wait policy.

On this 2-core machine, while other processes compete for the cores, a training step with 2 torch threads ran
about 10x *slower* than with 1 thread: OpenMP's threads spin-wait for each other between parallel regions and are
descheduled. ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep instead) removed that collapse. The policy is read when a
process starts, so each variant trains in its own subprocess (rounds interleaved, order alternating):
all cores with the default policy, all cores with PASSIVE, and one thread. On a quiet machine this shows what
PASSIVE costs; under load, what it saves.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from .common import ROOT, TIMING_LR, new_model, new_trainer, pick, random_batches, result

NAME = "thread_policy"
TITLE = "Torch threads and OMP_WAIT_POLICY (trainer images/s, one process per variant)"
SIZES = {
    "full": {"width": 16, "resolution": 16, "batch": 128, "steps": 2, "inner": 5, "rounds": 3},
    "quick": {"width": 16, "resolution": 16, "batch": 128, "steps": 1, "inner": 3, "rounds": 1},
    "tiny": {"width": 2, "resolution": 8, "batch": 8, "steps": 1, "inner": 1, "rounds": 1},
}
COLUMNS = [("variant", "variant"), ("threads", "threads"), ("ips", "trainer img/s"), ("ratio", "vs default")]


def variants() -> dict:
    cores = os.cpu_count() or 1
    return {"default": (cores, None), "passive": (cores, "PASSIVE"), "one_thread": (1, None)}


def child(width: int, resolution: int, batch: int, steps: int, inner: int) -> float:
    """In the subprocess: median seconds of ``inner`` trainer calls of ``steps`` batches, after one warm-up."""
    trainer = new_trainer(new_model(width))
    batches = random_batches(steps, batch, resolution)
    trainer.train(batches, TIMING_LR)
    times = []
    for _ in range(inner):
        start = time.perf_counter()
        trainer.train(batches, TIMING_LR)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def spawn(p: dict, threads: int, policy: str | None) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads), **({"OMP_WAIT_POLICY": policy} if policy else {}))
    args = [str(p[k]) for k in ("width", "resolution", "batch", "steps", "inner")]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.thread_policy", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"thread_policy child ({threads} threads, OMP_WAIT_POLICY={policy}) failed:\n"
                           f"{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]


def run(size: str = "full") -> dict:
    p = pick(SIZES, size)
    names = list(variants())
    seconds = {name: [] for name in names}
    for round_ in range(p["rounds"]):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            seconds[name].append(spawn(p, *variants()[name]))
    images = p["steps"] * p["batch"]
    ips = {name: images / statistics.median(s) for name, s in seconds.items()}
    rows = [{"variant": name + (" (OMP_WAIT_POLICY=PASSIVE)" if variants()[name][1] else ""),
             "threads": variants()[name][0], "ips": ips[name], "ratio": ips[name] / ips["default"]} for name in names]
    return result(NAME, TITLE, "reported (context: how the machine's threads behave)", COLUMNS, rows,
                  headline={"label": "PASSIVE / default (img/s)", "value": ips["passive"] / ips["default"],
                            "target": None},
                  notes=[f"ResNet-18 width {p['width']}, {p['resolution']} px, batch {p['batch']}, data in memory; "
                         f"median of {p['inner']} calls per process, median over {p['rounds']} interleaved rounds"])


if __name__ == "__main__":
    width, resolution, batch, steps, inner = (int(a) for a in sys.argv[1:6])
    print(json.dumps({"seconds": child(width, resolution, batch, steps, inner)}))
