"""Benchmark 3b: the distributed executor's push + pull against a worker's mini-epoch.

``transport`` rows: a server process and ``workers`` worker processes joined by :mod:`dbsl.ps.transport`
(torch.distributed.rpc over TensorPipe on 127.0.0.1), exchanging what :mod:`dbsl.ps.distributed` exchanges per
mini-epoch: a push (the worker's whole state dict, merged on the server with :func:`dbsl.ps.merge.merge_into`)
and a pull (a copy of the global state dict). Each worker alternates training ``steps`` in-memory batches, push,
pull (so the sides interleave); the workers run at once, as in a run. The mini-epoch time is the median batch time
times the batches of one mini-epoch of the CPU presets (Fashion-MNIST, n = 4: d/n = 15000 samples).

``executor`` rows (full size only: each run spawns its worker processes): a real ``executor=distributed`` run
through ``python -m dbsl.run``; its summary's per-worker ``communication`` and ``compute`` seconds per mini-epoch.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

import torch

from .common import ROOT, TIMING_LR, dataset_overrides, new_model, new_trainer, pick, random_batches, result

NAME = "push_pull"
TITLE = "Distributed executor: push + pull vs a worker's mini-epoch"
ADDR = "127.0.0.1"
TIMEOUT = 120.0
MINI_EPOCH_SAMPLES = 60000 // 4  # Fashion-MNIST over the CPU presets' n = 4 workers (d_L at n_S = 0)
# transport cases: (width, resolution, batch); executor: (width, resolution) of real distributed runs (none: skipped)
SIZES = {
    "full": {"cases": [(16, 28, 256), (64, 16, 64)], "steps": 1, "repeats": 7, "workers": 2,
             "executor": [(16, 28), (64, 16)], "executor_train": 1024},
    "quick": {"cases": [(16, 28, 128), (64, 16, 32)], "steps": 1, "repeats": 3, "workers": 2, "executor": []},
    "tiny": {"cases": [(2, 8, 8)], "steps": 1, "repeats": 2, "workers": 1, "executor": []},
}
COLUMNS = [("kind", "measured"), ("width", "width"), ("resolution", "px"), ("batch", "batch"),
           ("state_mb", "state MB"), ("workers", "workers"), ("push_ms", "push ms"), ("pull_ms", "pull ms"),
           ("push_pull_ms", "push+pull ms"), ("batch_ms", "train batch ms"), ("mini_epoch_s", "mini-epoch s"),
           ("ratio", "push+pull / mini-epoch")]

# -- the server process ----------------------------------------------------------------------------------------
_global: Dict[int, Dict[str, torch.Tensor]] = {}  # width -> the global state dict
_lock = threading.Lock()


def serve_push(width: int, state: Dict[str, torch.Tensor]) -> None:
    """A push: merge the worker's model into the global one (journal rule, f = 1), as ParameterServer.push."""
    from dbsl.ps.merge import merge_into
    from dbsl.ps.server import mergeable_keys

    with _lock:
        target = _global[width]
        keys = mergeable_keys(target)
        merge_into([target[k] for k in keys], [state[k] for k in keys], "journal", 1.0)


def serve_pull(width: int) -> Dict[str, torch.Tensor]:
    """A pull: a copy of the global model (the executor clones it under its lock, too)."""
    with _lock:
        return {k: v.clone() for k, v in _global[width].items()}


def _server(widths: List[int], world: int, ports: mp.Queue, done: mp.Event) -> None:
    from dbsl.ps import transport

    torch.set_num_threads(1)
    for width in widths:
        _global[width] = {k: v.clone() for k, v in new_model(width).state_dict().items()}
    store = transport.host_store(ADDR, 0, world, TIMEOUT)
    ports.put(store.port)
    transport.init(0, world, ADDR, store.port, TIMEOUT)
    done.wait(TIMEOUT * 4)
    transport.shutdown()


# -- a worker process ------------------------------------------------------------------------------------------
def _worker(rank: int, world: int, port: int, cases: list, steps: int, repeats: int, threads: int,
            results: mp.Queue) -> None:
    from dbsl.ps import transport

    torch.set_num_threads(threads)
    transport.init(rank, world, ADDR, port, TIMEOUT)
    try:
        for width, resolution, batch in cases:
            model = new_model(width)
            trainer = new_trainer(model)
            batches = random_batches(steps, batch, resolution, seed=rank)
            times = {"train": [], "push": [], "pull": []}
            for i in range(repeats + 1):  # the first round warms up
                t0 = time.perf_counter()
                trainer.train(batches, TIMING_LR)
                t1 = time.perf_counter()
                transport.call(serve_push, width, model.state_dict(), timeout=TIMEOUT)
                t2 = time.perf_counter()
                state = transport.call(serve_pull, width, timeout=TIMEOUT)
                t3 = time.perf_counter()
                model.load_state_dict(state)
                if i:
                    times["train"].append((t1 - t0) / steps)
                    times["push"].append(t2 - t1)
                    times["pull"].append(t3 - t2)
            results.put((rank, width, times))
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which fails the benchmark
        results.put((rank, None, f"{type(err).__name__}: {err}"))
    finally:
        transport.shutdown()


def transport_rows(p: dict) -> List[dict]:
    """Start the server and the workers, collect their timings, and always reap every process started here."""
    ctx = mp.get_context("spawn")
    workers, cases = p["workers"], p["cases"]
    world = workers + 1
    ports, results, done = ctx.Queue(), ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_server, args=(sorted({c[0] for c in cases}), world, ports, done), daemon=True)
    procs = [server]
    try:
        server.start()
        port = ports.get(timeout=TIMEOUT)
        threads = max(1, torch.get_num_threads() // workers)  # the parent's threads (--threads), shared out
        for rank in range(1, world):
            proc = ctx.Process(target=_worker, daemon=True,
                               args=(rank, world, port, cases, p["steps"], p["repeats"], threads, results))
            procs.append(proc)
            proc.start()
        collected: Dict[int, Dict[str, List[float]]] = {}
        for _ in range(workers * len(cases)):
            rank, width, times = results.get(timeout=TIMEOUT * 2)
            if width is None:
                raise RuntimeError(f"benchmark worker {rank} failed: {times}")
            merged = collected.setdefault(width, {"train": [], "push": [], "pull": []})
            for key, values in times.items():
                merged[key] += values
    except queue.Empty:
        raise RuntimeError(f"the push/pull benchmark's processes gave no answer in time (server alive: "
                           f"{server.is_alive()}; TIMEOUT={TIMEOUT:g} s)") from None
    finally:
        done.set()
        for proc in procs:
            proc.join(15)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    rows = []
    for width, resolution, batch in cases:
        t = collected[width]
        push, pull, batch_s = (statistics.median(t[k]) for k in ("push", "pull", "train"))
        mini_epoch = batch_s * round(MINI_EPOCH_SAMPLES / batch)
        state_mb = sum(v.numel() * v.element_size() for v in new_model(width).state_dict().values()) / 2**20
        rows.append({"kind": "transport", "width": width, "resolution": resolution, "batch": batch,
                     "state_mb": state_mb, "workers": workers, "push_ms": 1e3 * push, "pull_ms": 1e3 * pull,
                     "push_pull_ms": 1e3 * (push + pull), "batch_ms": 1e3 * batch_s, "mini_epoch_s": mini_epoch,
                     "ratio": (push + pull) / mini_epoch})
    return rows


# -- the real executor -----------------------------------------------------------------------------------------
def executor_row(width: int, resolution: int, train: int) -> dict:
    """One short ``executor=distributed`` run (2 workers, 2 epochs, batch 128); per-worker times from its summary."""
    with tempfile.TemporaryDirectory(prefix="dbsl-bench-") as tmp:
        cmd = [sys.executable, "-m", "dbsl.run", "executor=distributed", "scheme=baseline", *dataset_overrides("auto"),
               f"dataset.num_train={train}", "dataset.num_test=256", f"model.width={width}", "ps.num_workers=2",
               "schedule.epochs=2", "optim.lr_milestones=[]", f"schedule.resolutions=[{resolution}]",
               "schedule.dropouts=[0.2]", "schedule.batch_large=[128]", "schedule.cycle_ends=[]",
               "train.eval_every=1000000", "logger.progress=false", f"results_dir={tmp}"]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"})
        found = list(Path(tmp).rglob("summary.json"))
        if proc.returncode != 0 or not found:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        summary = json.loads(found[0].read_text())
    if "workers" not in summary:
        raise RuntimeError("the distributed run's summary.json has no per-worker time breakdown ('workers'), which "
                           "this benchmark reads; update executor_row to the executor's summary fields")
    per_worker = summary["workers"].values()
    epochs = sum(w["mini_epochs"] for w in per_worker)
    comm = sum(w["communication"] for w in per_worker) / epochs
    compute = sum(w["compute"] for w in per_worker) / epochs
    return {"kind": "executor run", "width": width, "resolution": resolution, "batch": 128, "workers": 2,
            "push_pull_ms": 1e3 * comm, "mini_epoch_s": compute, "ratio": comm / compute}


def run(size: str = "full") -> dict:
    p = pick(SIZES, size)
    rows = transport_rows(p)
    notes = [f"transport: {p['workers']} worker process(es) at once, {max(1, torch.get_num_threads() // p['workers'])} "
             f"thread(s) each; medians over {p['repeats']} rounds of train / push / pull; mini-epoch = "
             f"{MINI_EPOCH_SAMPLES} samples at the row's batch"]
    train = p.get("executor_train", 0)
    rows += [executor_row(width, resolution, train) for width, resolution in p["executor"]]
    if p["executor"]:
        notes.append(f"executor run: {train} training images, 2 workers; push+pull = the workers' 'communication' "
                     "seconds per mini-epoch (every RPC, including the first describe and the last bye), mini-epoch "
                     "= their 'compute' seconds per mini-epoch (short mini-epochs: the ratio is an upper bound)")
    else:
        notes.append("executor run: skipped at this size (each run spawns worker processes); `just bench` runs it")
    worst = max(rows, key=lambda r: r["ratio"])
    return result(NAME, TITLE, "reported (no target in the issue)", COLUMNS, rows,
                  headline={"label": "largest push+pull / mini-epoch", "value": worst["ratio"], "target": None,
                            "where": f"{worst['kind']}, width {worst['width']}"},
                  notes=notes)
