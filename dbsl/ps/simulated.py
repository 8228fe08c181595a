"""The simulated executor: one process runs the n workers on a virtual clock.

Each mini-epoch's duration comes from the time model (Eq. 2 with the step count, times an optional seeded
jitter). A worker pulls the global model when it starts and pushes when its virtual finish time comes; pushes are
merged in the order of finish times (ties by rank), so the staleness of asynchronous training is reproduced,
deterministically. A worker trains lazily at its finish event, from the snapshot it pulled at its start.
"""
from __future__ import annotations

import heapq
import logging

import torch

from ..errors import Diverged
from .context import RunContext
from .worker import Worker, derive_seed

log = logging.getLogger("dbsl")


class Simulation:
    def __init__(self, ctx: RunContext):
        self.ctx, self.cfg, self.plan = ctx, ctx.cfg, ctx.plan
        pipeline = ctx.new_pipeline()
        model = ctx.initial_model()
        self.server = ctx.new_server(model)
        self.evaluator = ctx.new_evaluator(model, pipeline)
        self.workers = {rank: ctx.new_worker(rank, pipeline) for rank in range(1, self.plan.num_workers + 1)}
        self.events: list[tuple[float, int]] = []  # (virtual finish time, rank)
        self.blocked: list[int] = []  # SSP: workers waiting for the slowest
        self.clock = 0.0

    # -- the virtual clock -----------------------------------------------------------------------------------
    def duration(self, worker: Worker) -> float:
        base = self.plan.mini_epoch_time(worker.rank, worker.phase)
        jitter = self.cfg.executor.jitter
        if not jitter:
            return base
        g = torch.Generator().manual_seed(derive_seed(self.cfg.seed, worker.rank, worker.local_round, "jitter"))
        return base * max(0.1, 1.0 + jitter * float(torch.randn((), generator=g)))

    def start(self, rank: int, now: float) -> None:
        worker = self.workers[rank]
        worker.pull(self.server.state, self.server.phase(), self.server.lr())
        heapq.heappush(self.events, (now + self.duration(worker), rank))

    # -- asynchronous (ASP, SSP) -------------------------------------------------------------------------------
    def run_async(self) -> None:
        if not self.events and not self.blocked:
            for rank in self.workers:
                self.start(rank, 0.0)
        while not self.server.done:
            now, rank = heapq.heappop(self.events)
            self.clock = now
            worker = self.workers[rank]
            phase, lr = worker.phase, worker.lr
            stats = worker.train_mini_epoch()
            commit = self.server.push(rank, worker.state())
            self.after_commit(commit, rank, phase, lr, stats, now, self.server.tested_commit([commit]) is not None)
            if self.server.done:
                break
            self.blocked.append(rank)  # its next pull, held while the server says so (SSP)
            for other in self.server.released(self.blocked):
                self.blocked.remove(other)
                self.start(other, now)
            self.maybe_checkpoint([commit])

    # -- synchronous (BSP) -------------------------------------------------------------------------------------
    def run_sync(self) -> None:
        while not self.server.done:
            phase, lr = self.server.phase(), self.server.lr()
            ranks = sorted(self.workers)
            for rank in ranks:
                self.workers[rank].pull(self.server.state, phase, lr)
            durations = {rank: self.duration(self.workers[rank]) for rank in ranks}
            stats = {rank: self.workers[rank].train_mini_epoch() for rank in ranks}
            commits = self.server.push_round(ranks, [self.workers[r].state() for r in ranks])
            self.clock += max(durations.values())
            tested = self.server.tested_commit(commits)
            for rank, commit in zip(ranks, commits):
                self.after_commit(commit, rank, phase, lr, stats[rank], self.clock, commit == tested)
            self.maybe_checkpoint(commits)

    # -- bookkeeping -------------------------------------------------------------------------------------------
    def after_commit(self, commit, rank, phase, lr, stats, now, evaluate: bool) -> None:
        """Record the commit; the merged model is tested at the resolution the pushing worker trained at. A NaN or
        infinite loss ends the run (:class:`Diverged`) once its row is recorded."""
        test = self.evaluator(self.server.state, phase.resolution) if evaluate else None
        self.ctx.monitor.commit(commit, rank, phase, lr, stats, now, test)
        if self.ctx.monitor.diverged:
            raise Diverged(self.ctx.monitor.diverged)

    def maybe_checkpoint(self, commits: list[int]) -> None:
        if self.server.checkpoint_due(commits):
            self.ctx.record.save_checkpoint(self.state_dict())

    def state_dict(self) -> dict:
        return {"executor": "simulated", "commit": self.server.commits - 1, "server": self.server.state_dict(),
                "workers": {r: w.state_dict() for r, w in self.workers.items()}, "events": list(self.events),
                "blocked": list(self.blocked), "clock": self.clock, "monitor": self.ctx.monitor.state_dict(),
                "rng": torch.get_rng_state()}

    def load_state_dict(self, data: dict) -> None:
        self.server.load_state_dict(data["server"])
        for rank, state in data["workers"].items():
            self.workers[int(rank)].load_state_dict(state)
        self.events = [tuple(e) for e in data["events"]]
        heapq.heapify(self.events)
        self.blocked, self.clock = list(data["blocked"]), data["clock"]
        self.ctx.monitor.load_state_dict(data["monitor"])


def run_simulated(ctx: RunContext, checkpoint: dict | None = None) -> None:
    sim = Simulation(ctx)
    if checkpoint is not None:
        sim.load_state_dict(checkpoint)
        log.info("resumed from the checkpoint at commit %d", checkpoint["commit"] + 1)
    if sim.server.policy.rounds:
        sim.run_sync()
    else:
        sim.run_async()
    ctx.record.save_final(sim.server.state)

