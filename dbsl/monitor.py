"""The Monitor: what happens after every commit, whichever executor runs: the record's metrics row, best/final
tracking, the measured clock, divergence, progress (a bar on a terminal, one log line per epoch) and the sinks
(e.g. W&B, :mod:`dbsl.sinks`)."""
from __future__ import annotations

import logging
import math
import sys
import time
from typing import Sequence

import torch
from tqdm import tqdm

from .plan import Phase, Plan
from .record import RunRecord
from .sinks import Sink
from .stats import EvalStats, TrainStats

log = logging.getLogger("dbsl")


class Monitor:
    def __init__(self, plan: Plan, record: RunRecord, sinks: Sequence[Sink] = (), progress: bool = True,
                 start_commit: int = 0, measured_clock: str | None = "wall"):
        self.plan, self.record, self.sinks = plan, record, list(sinks)
        self.best: dict | None = None
        self.final: dict | None = None
        self.last_eval: dict | None = None
        self.compute_time = 0.0
        self.eval_time = 0.0
        self.modelled_time = 0.0
        # The measured clock: the same ASP schedule replayed with each mini-epoch's measured duration, i.e. what n
        # machines like this one would take. A worker's mini-epochs run back to back, so a commit lands at its
        # worker's cumulative measured seconds; the run's measured time is its last commit's. ``measured_clock``
        # says which measurement: "cpu" (CPU seconds; see measured_clock_source), "wall", or None (not kept).
        self.measured_clock = measured_clock
        self.worker_clock: dict[int, float] = {}
        self.wall_offset = 0.0  # wall seconds of earlier (interrupted) attempts
        self.cpu_offset = 0.0  # CPU seconds of earlier attempts (this process's: under the simulated executor, all)
        self.extra: dict = {}  # executor-specific summary fields (e.g. the distributed executor's time breakdown)
        self.diverged: str | None = None  # why the run diverged (a NaN or infinite loss); the executors stop on it
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        self.bar = tqdm(total=plan.total_commits, initial=start_commit, unit="commit", dynamic_ncols=True,
                        disable=not (progress and sys.stderr.isatty()), desc=plan.scheme)

    def wall_time(self) -> float:
        return self.wall_offset + time.perf_counter() - self.start

    def cpu_time(self) -> float:
        """This process's CPU seconds over the run (all its threads), the CPU twin of :meth:`wall_time`."""
        return self.cpu_offset + time.process_time() - self.cpu_start

    def commit(self, commit: int, rank: int, phase: Phase, lr: float, stats: TrainStats, modelled_time: float,
               test: EvalStats | None) -> dict:
        n = self.plan.num_workers
        self.compute_time += stats.seconds
        self.modelled_time = max(self.modelled_time, modelled_time)
        measured = None
        if self.measured_clock is not None:
            seconds = stats.cpu_seconds if self.measured_clock == "cpu" else stats.seconds
            measured = self.worker_clock[rank] = self.worker_clock.get(rank, 0.0) + seconds
        row = {"commit": commit, "epoch": commit // n + 1, "worker": rank, "small": self.plan.is_small(rank),
               "phase": phase.index, "lr_stage": phase.lr_stage, "resolution": phase.resolution,
               "dropout": phase.dropout, "lr": lr, "batch_size": self.plan.batch_size(rank, phase),
               "samples": stats.samples, "train_loss": stats.loss, "train_acc": stats.acc,
               "modelled_time": modelled_time, "wall_time": self.wall_time(), "compute_time": self.compute_time,
               "seconds": stats.seconds, "cpu_seconds": stats.cpu_seconds, "measured_time": measured}
        if test is not None:
            self.eval_time += test.seconds
            row.update(test_loss=test.loss, test_top1=test.top1, test_top5=test.top5, test_loss_l2=test.loss + test.l2)
            point = {"commit": commit, "epoch": row["epoch"], "test_loss": test.loss, "test_top1": test.top1,
                     "test_top5": test.top5, "test_loss_l2": row["test_loss_l2"], "modelled_time": modelled_time,
                     "wall_time": row["wall_time"]}
            self.last_eval = self.final = point
            if self.best is None or test.top1 > self.best["test_top1"]:
                self.best = point
        self.record.append_metrics([row])
        if self.diverged is None:
            self.diverged = divergence(row)
        for sink in self.sinks:
            sink.log_commit(row)
        self.bar.update(1)
        if (commit + 1) % n == 0:
            self._epoch_line(commit, phase, lr, row)
        return row

    def _epoch_line(self, commit: int, phase: Phase, lr: float, row: dict) -> None:
        n = self.plan.num_workers
        test = self.last_eval
        acc = f"test top-1 {test['test_top1']:.4f} loss {test['test_loss']:.4f} (commit {test['commit']})" \
            if test else "not evaluated yet"
        line = (f"epoch {commit // n + 1}/{self.plan.total_commits // n}  commit {commit + 1}  {phase.resolution}px "
                f"lr {lr:.4g}  train loss {row['train_loss']:.4f}  {acc}  modelled {self.modelled_time:.1f}s  "
                + (f"measured {max(self.worker_clock.values()):.1f}s  " if self.worker_clock else "")
                + f"wall {row['wall_time']:.1f}s")
        if self.bar.disable:
            log.info(line)
        else:
            self.bar.write(line)

    def state_dict(self) -> dict:
        return {"best": self.best, "final": self.final, "last_eval": self.last_eval,
                "compute_time": self.compute_time, "eval_time": self.eval_time,
                "modelled_time": self.modelled_time, "wall_time": self.wall_time(), "cpu_time": self.cpu_time(),
                "measured_clock": self.measured_clock, "worker_clock": dict(self.worker_clock)}

    def load_state_dict(self, data: dict) -> None:
        self.best, self.final, self.last_eval = data["best"], data["final"], data["last_eval"]
        self.compute_time, self.eval_time = data["compute_time"], data["eval_time"]
        self.modelled_time, self.wall_offset = data["modelled_time"], data["wall_time"]
        self.worker_clock = {int(r): t for r, t in data.get("worker_clock", {}).items()}
        self.measured_clock = data.get("measured_clock", self.measured_clock)
        self.cpu_offset = data.get("cpu_time", 0.0)
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def results(self) -> dict:
        """The summary's metrics: best (over all evaluations, as the journal tables) and final (as COMPSAC's)."""
        return {"best": self.best, "final": self.final, "modelled_time": self.modelled_time,
                "measured_time": max(self.worker_clock.values(), default=None), "measured_clock": self.measured_clock,
                "wall_time": self.wall_time(), "cpu_time": self.cpu_time(), "compute_time": self.compute_time,
                "eval_time": self.eval_time, **self.extra}

    def close(self) -> None:
        self.bar.close()


def measured_clock_source(executor: str, sync: str, device: torch.device) -> str | None:
    """'cpu' for the simulated executor training on one CPU thread: a mini-epoch's CPU seconds are then what a
    machine of its own would take, and other processes sharing the cores inflate them far less than wall seconds
    (not at all is too much to hope for: shared caches and sibling hyper-threads still slow them). Otherwise 'wall'
    (several threads, a GPU, or real workers). None under BSP/SSP, whose waits the back-to-back replay does not
    model."""
    if sync != "ASP":
        return None
    one_thread = device.type == "cpu" and torch.get_num_threads() == 1
    return "cpu" if executor == "simulated" and one_thread else "wall"


def divergence(row: dict) -> str | None:
    """Why a commit's row shows a diverged run (a NaN or infinite train or test loss), or None."""
    losses = {"train loss": row["train_loss"] if row.get("samples") else None, "test loss": row.get("test_loss")}
    for name, value in losses.items():
        if value is not None and not math.isfinite(value):
            return (f"{name} is {value} at commit {row['commit']} (worker {row['worker']}, lr {row['lr']:g}): the "
                    "run diverged; lower optim.lr (or warm up: optim.warmup_epochs)")
    return None
