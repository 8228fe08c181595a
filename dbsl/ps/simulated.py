"""The simulated executor: one process runs the n workers on a virtual clock.

Each mini-epoch's duration comes from the time model (Eq. 2 with the step count, times an optional seeded
jitter). A worker pulls the global model when it starts and pushes when its virtual finish time comes; pushes are
merged in the order of finish times (ties by rank), so the staleness of asynchronous training is reproduced,
deterministically. A worker trains lazily at its finish event, from the snapshot it pulled at its start. The clock
and the sync rules are :mod:`dbsl.ps.clock`'s; this module trains and records.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from ..errors import Diverged
from .clock import VirtualRun
from .worker import Worker, derive_seed

if TYPE_CHECKING:  # annotations only
    from .context import RunContext

log = logging.getLogger("dbsl")


class Simulation(VirtualRun):
    """The n workers of one run, trained in one process at their arrivals on the modelled clock."""

    def __init__(self, ctx: RunContext):
        self.ctx, self.cfg, self.plan = ctx, ctx.cfg, ctx.plan
        pipeline = ctx.new_pipeline()
        model = ctx.initial_model()
        super().__init__(ctx.new_server(model), range(1, self.plan.num_workers + 1))
        self.evaluator = ctx.new_evaluator(model, pipeline)
        self.workers = {rank: ctx.new_worker(rank, pipeline) for rank in self.ranks}

    def duration(self, worker: Worker) -> float:
        """The time model's mini-epoch (Eq. 2 at the plan's step count), times the seeded jitter if any."""
        base = self.plan.mini_epoch_time(worker.rank, worker.phase)
        jitter = self.cfg.executor.jitter
        if not jitter:
            return base
        g = torch.Generator().manual_seed(derive_seed(self.cfg.seed, worker.rank, worker.local_round, "jitter"))
        return base * max(0.1, 1.0 + jitter * float(torch.randn((), generator=g)))

    # -- what happens on the clock -----------------------------------------------------------------------------
    def begin(self, rank: int) -> float:
        worker = self.workers[rank]
        worker.pull(self.server.state, self.server.phase(), self.server.lr())
        return self.duration(worker)

    def arrive(self, rank: int, now: float) -> list[int]:
        """The worker trains from the snapshot it pulled (lazily, now), pushes, and the commit is recorded."""
        worker = self.workers[rank]
        phase, lr = worker.phase, worker.lr
        stats = worker.train_mini_epoch()
        commit = self.server.push(rank, worker.state())
        self.after_commit(commit, rank, phase, lr, stats, now, self.server.tested_commit([commit]) is not None)
        return [commit]

    def arrive_round(self, ranks: list[int], end: float) -> list[int]:
        phase, lr = self.server.phase(), self.server.lr()
        stats = {rank: self.workers[rank].train_mini_epoch() for rank in ranks}
        commits = self.server.push_round(ranks, [self.workers[r].state() for r in ranks])
        tested = self.server.tested_commit(commits)
        for rank, commit in zip(ranks, commits):
            self.after_commit(commit, rank, phase, lr, stats[rank], end, commit == tested)
        return commits

    def after(self, commits: list[int]) -> None:
        if self.server.checkpoint_due(commits):
            self.ctx.record.save_checkpoint(self.state_dict())

    # -- bookkeeping -------------------------------------------------------------------------------------------
    def after_commit(self, commit, rank, phase, lr, stats, now, evaluate: bool) -> None:
        """Record the commit; the merged model is tested at the resolution the pushing worker trained at. A NaN or
        infinite loss ends the run (:class:`Diverged`) once its row is recorded."""
        test = self.evaluator(self.server.state, phase.resolution) if evaluate else None
        self.ctx.monitor.commit(commit, rank, phase, lr, stats, now, test)
        if self.ctx.monitor.diverged:
            raise Diverged(self.ctx.monitor.diverged)

    def state_dict(self) -> dict:
        return {"executor": "simulated", "commit": self.server.commits - 1, "server": self.server.state_dict(),
                "workers": {r: w.state_dict() for r, w in self.workers.items()}, **super().state_dict(),
                "monitor": self.ctx.monitor.state_dict(), "rng": torch.get_rng_state()}

    def load_state_dict(self, data: dict) -> None:
        self.server.load_state_dict(data["server"])
        for rank, state in data["workers"].items():
            self.workers[int(rank)].load_state_dict(state)
        super().load_state_dict(data)
        self.ctx.monitor.load_state_dict(data["monitor"])


def run_simulated(ctx: RunContext, checkpoint: dict | None = None) -> None:
    sim = Simulation(ctx)
    if checkpoint is not None:
        sim.load_state_dict(checkpoint)
        log.info("resumed from the checkpoint at commit %d", checkpoint["commit"] + 1)
    sim.run()
    ctx.record.save_final(sim.server.state)

