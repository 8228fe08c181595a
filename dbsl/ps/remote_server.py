"""The server process of the distributed executor: the RPC handlers that answer the workers, and the module-level
RPC entry points they call.

A worker's calls (answered on RPC threads, under one lock)::

    describe(rank)                    -> (config, plan)                       the server's, so all ranks agree
    pull(rank, commit, test, times)   -> Pull(global model, phase, LR, local round) | Stop
    push(rank, model, train stats)    -> Ack(commit, merged model if the commit is due for evaluation) | Stop
    bye(rank, times)

What may happen is the :class:`~dbsl.ps.server.ParameterServer`'s sync policy: ASP merges a push on arrival; SSP
also holds a worker's pull while the server says it leads the slowest by too much; BSP holds every push until all n
arrived, then merges the round (``push_round``). As in the authors' code, the worker tests the merged model it got
back (in parallel with the others) and sends the result with its next pull; the server records commits in commit
order, each once its test is in (:class:`~dbsl.ps.commit_log.CommitLog`). The service's other parts: the modelled
clock (:mod:`dbsl.ps.clock`, the ``modelled_time`` column), supervision (:mod:`dbsl.ps.supervisor`) and time
accounting (:mod:`dbsl.ps.worker_times`).
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Dict, Iterator, List, Tuple

import torch
import torch.distributed.rpc as rpc
from torch.futures import Future

from ..config import Config
from ..stats import EvalStats, TrainStats
from . import transport
from .clock import ModelledClock
from .commit_log import CommitLog
from .context import RunContext
from .messages import Ack, Pull, Stop
from .supervisor import Supervisor
from .worker_times import WorkerTimes


def _ready(value) -> Future:
    fut = Future()
    fut.set_result(value)
    return fut


def _clone(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in state.items()}


class ParameterService:
    """The server process's side of the conversation: the RPC handlers, the answers it holds (SSP pulls, BSP
    pushes), and what it hands on (commits to the log, signs of life to the supervisor, times to the accounting)."""

    def __init__(self, ctx: RunContext, checkpoint: dict | None = None):
        self.ctx, self.plan = ctx, ctx.plan
        self.server = ctx.new_server(ctx.initial_model().cpu())  # weights travel as CPU tensors
        self.ranks = list(range(1, self.plan.num_workers + 1))
        self.lock = threading.Lock()
        self.clock = ModelledClock(self.ranks, ordered=False)  # the real pushes decide the order
        self.supervisor = Supervisor(self, self.ranks, ctx.cfg.executor.timeout, self.plan.total_commits)
        self.times = WorkerTimes(self.ranks)
        self.given: Dict[int, tuple] = {}  # rank -> (phase, lr) of the mini-epoch it is training
        self.held: Dict[int, Tuple[str, Future, float]] = {}  # rank -> (pull | push, answer, since)
        self.round: Dict[int, tuple] = {}  # BSP: rank -> (state, entry) of this round's pushes
        start = 0
        if checkpoint is not None:
            self.load_state_dict(checkpoint)
            start = checkpoint["commit"] + 1
        self.log = CommitLog(ctx.monitor, ctx.record, start)

    # -- RPC handlers --------------------------------------------------------------------------------------
    def describe(self, rank: int) -> tuple[Config, object]:
        with self.lock:
            self.supervisor.heard(rank)
        return self.ctx.cfg, self.plan

    def pull(self, rank: int, commit: int | None, test: EvalStats | None, times: dict) -> Future:
        with self.lock:
            self._heard(rank, times)
            if commit is not None and test is not None:
                self.log.add_test(commit, test)
            if self.supervisor.failure is not None:
                return _ready(Stop(self.supervisor.failure))
            if self.server.done:
                return _ready(Stop("done"))
            if not self.server.may_pull(rank):
                fut = Future()
                self.held[rank] = ("pull", fut, time.perf_counter())
                return fut
            return _ready(self._pull(rank, 0.0))

    def push(self, rank: int, state: Dict[str, torch.Tensor], stats: TrainStats) -> Future:
        answers: List[Tuple[Future, object]] = []
        with self.lock:
            self._heard(rank)
            if self.supervisor.failure is not None:
                return _ready(Stop(self.supervisor.failure))
            phase, lr = self.given[rank]
            # the mini-epoch goes on the modelled clock when its push arrives (a checkpoint taken meanwhile holds no
            # finish of a mini-epoch still in flight, which a resumed worker trains again)
            finish = self.clock.start(rank, self.plan.mini_epoch_time(rank, phase))
            entry = {"rank": rank, "phase": phase, "lr": lr, "stats": stats, "modelled_time": finish}
            if self.server.policy.rounds:
                fut = Future()
                self.round[rank] = (state, entry)
                self.held[rank] = ("push", fut, time.perf_counter())
                if len(self.round) == len(self.ranks):
                    answers = self._close_round()
                result = fut
            else:
                commit = self.server.push(rank, state)
                if commit is None:
                    return _ready(Ack(None, None, 0.0))
                tested = self.server.tested_commit([commit]) is not None
                snapshot = _clone(self.server.state) if tested else None
                self._commit(commit, entry, tested, self.server.checkpoint_due([commit]))
                answers = self._release_blocked(self.clock.finish[rank])
                result = _ready(Ack(commit, snapshot, 0.0))
        for fut, value in answers:  # answered outside the lock
            fut.set_result(value)
        return result

    def bye(self, rank: int, times: dict) -> None:
        with self.lock:
            self._heard(rank, times)
            self.supervisor.left(rank)

    def fail(self, rank: int, message: str) -> None:
        with self.lock:
            self.supervisor.fail(f"worker {rank} failed: {message}; "
                                 f"{self.supervisor.where(rank, self.server.commits)}")

    # -- the answers -----------------------------------------------------------------------------------------
    def _heard(self, rank: int, times: dict | None = None) -> None:
        self.supervisor.heard(rank)
        self.times.report(rank, times)

    def _pull(self, rank: int, waited: float) -> Pull:
        phase, lr = self.server.phase(), self.server.lr()
        self.given[rank] = (phase, lr)
        self.times.training_started()
        return Pull(_clone(self.server.state), phase.index, lr, self.server.pushes[rank], waited)

    def _release_blocked(self, at: float) -> list:
        """SSP: answer the held pulls the server now lets go (or stop them once training is over)."""
        answers, now = [], time.perf_counter()
        for rank in self.server.released(r for r, (kind, _, _) in self.held.items() if kind == "pull"):
            _, fut, since = self.held.pop(rank)
            self.supervisor.heard(rank)
            if self.server.done:
                answers.append((fut, Stop("done")))
            else:
                self.clock.hold(rank, at)
                answers.append((fut, self._pull(rank, now - since)))
        return answers

    def _close_round(self) -> list:
        """BSP: merge the round; the server says which of its commits is tested and whether to checkpoint after it."""
        ranks = sorted(self.round)
        commits = self.server.push_round(ranks, [self.round[r][0] for r in ranks])
        tested = self.server.tested_commit(commits)
        end = self.clock.close_round(ranks)
        snapshot = _clone(self.server.state) if tested is not None else None
        checkpoint = self.server.checkpoint_due(commits)
        answers, now = [], time.perf_counter()
        for rank, commit in zip(ranks, commits):
            _, entry = self.round.pop(rank)
            self._commit(commit, dict(entry, modelled_time=end), commit == tested, checkpoint and commit == commits[-1])
            _, fut, since = self.held.pop(rank)
            self.supervisor.heard(rank)
            answers.append((fut, Ack(commit, snapshot if commit == tested else None, now - since)))
        return answers

    def _commit(self, commit: int, entry: dict, awaiting_test: bool, checkpoint: bool) -> None:
        self.supervisor.committed(entry["rank"], commit)
        if self.server.done:
            self.times.training_over()
        self.log.add(commit, entry, awaiting_test, self.state_dict(commit) if checkpoint else None)

    # -- what the supervisor asks (under the lock) -----------------------------------------------------------
    def progress(self) -> tuple[bool, int, set, str | None]:
        return (self.log.next >= self.plan.total_commits, self.server.commits, set(self.held),
                self.ctx.monitor.diverged)

    def stop_held(self, reason: str) -> list:
        answers = [(fut, Stop(reason)) for _, fut, _ in self.held.values()]
        self.held.clear()
        self.round.clear()
        self.log.flush(abandon=True)
        return answers

    # -- results and checkpoints -----------------------------------------------------------------------------
    def results(self) -> dict:
        """Extra summary fields: the training time (start to the last commit) and each worker's time breakdown."""
        with self.lock:
            return {**self.times.results(), "transport": "torch.distributed.rpc (TensorPipe)"}

    def state_dict(self, commit: int) -> dict:
        return {"executor": "distributed", "commit": commit, "server": self.server.state_dict(),
                "clock": self.clock.state_dict(), "workers": self.times.workers(),
                "training_time": self.times.elapsed(), "rng": torch.get_rng_state()}

    def load_state_dict(self, data: dict) -> None:
        self.server.load_state_dict(data["server"])
        self.ctx.monitor.load_state_dict(data["monitor"])
        self.clock.load_state_dict(data["clock"])
        self.times.load(data["workers"], data["training_time"])


# -- RPC entry points (called by the workers, run in the server process) -----------------------------------------
_service: ParameterService | None = None
_loud: int | None = None  # the C++ log level before the first bye quieted it for the shutdown


@contextlib.contextmanager
def serving(service: ParameterService) -> Iterator[None]:
    """Answer the workers' calls with ``service`` while inside; afterwards restore the log level a bye lowered."""
    global _service, _loud
    _service = service
    try:
        yield
    finally:
        transport.quiet(_loud)  # the level of before (for the next run in this process)
        _service, _loud = None, None


def _serving() -> ParameterService:
    if _service is None:
        raise RuntimeError("this process serves no distributed run")
    return _service


def describe(rank: int):
    return _serving().describe(rank)


@rpc.functions.async_execution
def pull(rank: int, commit: int | None, test: EvalStats | None, times: dict) -> Future:
    return _serving().pull(rank, commit, test, times)


@rpc.functions.async_execution
def push(rank: int, state: Dict[str, torch.Tensor], stats: TrainStats) -> Future:
    return _serving().push(rank, state, stats)


def bye(rank: int, times: dict) -> None:
    global _loud
    _serving().bye(rank, times)
    if _loud is None:  # the worker leaves: its pipe closing is no news (a failure is the service's to report)
        _loud = transport.quiet()


def fail(rank: int, message: str) -> None:
    _serving().fail(rank, message)
