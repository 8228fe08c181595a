"""The server process of the distributed executor: the conversation with the workers, its schedule, and the RPC
entry points the workers call.

A worker's calls (module-level functions of this module, answered on RPC threads, under one lock)::

    describe(rank)                    -> (config, plan)                       the server's, so all ranks agree
    pull(rank, commit, test, times)   -> Pull(global model, phase, LR, local round) | Stop
    push(rank, model, train stats)    -> Ack(commit, merged model if the commit is due for evaluation) | Stop
    bye(rank, times)

What may happen is the :class:`~dbsl.ps.server.ParameterServer`'s sync policy: ASP merges a push on arrival; SSP
also holds a worker's pull while the server says it leads the slowest by too much; BSP holds every push until all n
arrived, then merges the round (``push_round``). As in
the authors' code, the worker tests the merged model it got back (in parallel with the others) and sends the result
with its next pull; the server records commits in commit order, each once its test is in (:class:`CommitLog`).
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.distributed.rpc as rpc
from torch.futures import Future

from ..config import Config
from ..errors import Diverged
from ..local_training import EvalStats, TrainStats
from . import transport
from .context import RunContext
from .launch import LocalWorkers

log = logging.getLogger("dbsl")

TIMES = ("compute", "communication", "evaluation", "waiting")  # a worker's seconds, as it measures them


@dataclass
class Pull:
    state: Dict[str, torch.Tensor]
    phase: int  # index into plan.phases
    lr: float
    local_round: int  # the worker's pushes merged so far (its randomness continues from there after a resume)
    waited: float  # seconds the server held this answer (SSP)


@dataclass
class Ack:
    commit: Optional[int]  # None: training was already over, the push was not merged (as the authors' server)
    state: Optional[Dict[str, torch.Tensor]]  # the merged model, when this commit is due for evaluation
    waited: float  # seconds the server held this answer (BSP)


@dataclass
class Stop:
    reason: str  # "done", or why the server gave up


class WorkerFailure(RuntimeError):
    """A worker died, failed or stopped answering; the message names it and the last commit."""


def _ready(value) -> Future:
    fut = Future()
    fut.set_result(value)
    return fut


def _clone(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in state.items()}


class CommitLog:
    """Hands commits to the Monitor in commit order, each once its test result (if due) is in, and saves the
    checkpoint taken at a commit right after recording it, so that a checkpoint and metrics.csv always agree."""

    def __init__(self, monitor, record, next_commit: int):
        self.monitor, self.record, self.next = monitor, record, next_commit
        self.pending: Dict[int, dict] = {}

    def add(self, commit: int, entry: dict, awaiting_test: bool, checkpoint: dict | None) -> None:
        self.pending[commit] = dict(entry, awaiting=awaiting_test, test=None, checkpoint=checkpoint)
        self.flush()

    def add_test(self, commit: int, test: EvalStats) -> None:
        entry = self.pending.get(commit)
        if entry is not None and entry["awaiting"]:
            entry.update(awaiting=False, test=test)
            self.flush()

    def flush(self, abandon: bool = False) -> None:
        """Record every commit that is ready; ``abandon`` (a failed run) records the rest without their tests."""
        while self.next in self.pending and (abandon or not self.pending[self.next]["awaiting"]):
            e = self.pending.pop(self.next)
            self.monitor.commit(self.next, e["rank"], e["phase"], e["lr"], e["stats"], e["modelled_time"], e["test"])
            if e["checkpoint"] is not None and not abandon:
                self.record.save_checkpoint(dict(e["checkpoint"], monitor=self.monitor.state_dict()))
            self.next += 1


class ParameterService:
    """The server process's side of the conversation (the RPC handlers run on RPC threads, under one lock).

    Also keeps each worker's modelled clock (the time model's duration of every mini-epoch, as the simulated
    executor's virtual clock) for the ``modelled_time`` column.
    """

    def __init__(self, ctx: RunContext, checkpoint: dict | None = None):
        self.ctx, self.cfg, self.plan, self.monitor = ctx, ctx.cfg, ctx.plan, ctx.monitor
        self.server = ctx.new_server(ctx.initial_model().cpu())  # weights travel as CPU tensors
        self.ranks = list(range(1, self.plan.num_workers + 1))
        self.timeout = self.cfg.executor.timeout
        self.lock = threading.Lock()
        self.given: Dict[int, tuple] = {}  # rank -> (phase, lr) of the mini-epoch it is training
        self.start_at = {r: 0.0 for r in self.ranks}  # modelled clock: start of the current mini-epoch
        self.finish = {r: 0.0 for r in self.ranks}  # ... end of the last one
        self.release = {r: 0.0 for r in self.ranks}  # ... when the server last let it go on (SSP, BSP)
        self.held: Dict[int, Tuple[str, Future, float]] = {}  # rank -> (pull | push, answer, since)
        self.round: Dict[int, tuple] = {}  # BSP: rank -> (state, entry) of this round's pushes
        self.seen = {r: time.perf_counter() for r in self.ranks}
        self.last_commit: Dict[int, Optional[int]] = {r: None for r in self.ranks}
        self.gone: set = set()  # said bye
        self.times = {r: dict.fromkeys(TIMES + ("mini_epochs",), 0.0) for r in self.ranks}
        self.times_before = {r: dict.fromkeys(TIMES + ("mini_epochs",), 0.0) for r in self.ranks}
        self.training_start: float | None = None
        self.training_before = 0.0  # training seconds of earlier attempts
        self.training_time: float | None = None
        self.failure: str | None = None
        start = 0
        if checkpoint is not None:
            self.load_state_dict(checkpoint)
            start = checkpoint["commit"] + 1
        self.log = CommitLog(self.monitor, ctx.record, start)

    # -- RPC handlers --------------------------------------------------------------------------------------
    def describe(self, rank: int) -> tuple[Config, object]:
        with self.lock:
            self.seen[rank] = time.perf_counter()
        return self.cfg, self.plan

    def pull(self, rank: int, commit: int | None, test: EvalStats | None, times: dict) -> Future:
        with self.lock:
            self._heard(rank, times)
            if commit is not None and test is not None:
                self.log.add_test(commit, test)
            if self.failure is not None:
                return _ready(Stop(self.failure))
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
            if self.failure is not None:
                return _ready(Stop(self.failure))
            phase, lr = self.given[rank]
            self.finish[rank] = self.start_at[rank] + self.plan.mini_epoch_time(rank, phase)
            entry = {"rank": rank, "phase": phase, "lr": lr, "stats": stats, "modelled_time": self.finish[rank]}
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
                answers = self._release_blocked(self.finish[rank])
                result = _ready(Ack(commit, snapshot, 0.0))
        for fut, value in answers:  # answered outside the lock
            fut.set_result(value)
        return result

    def bye(self, rank: int, times: dict) -> None:
        with self.lock:
            self._heard(rank, times)
            self.gone.add(rank)

    def fail(self, rank: int, message: str) -> None:
        with self.lock:
            if self.failure is None:
                self.failure = f"worker {rank} failed: {message}; {self._where(rank)}"

    # -- the schedule ----------------------------------------------------------------------------------------
    def _heard(self, rank: int, times: dict | None = None) -> None:
        self.seen[rank] = time.perf_counter()
        if times:
            self.times[rank] = dict(times)

    def _pull(self, rank: int, waited: float) -> Pull:
        phase, lr = self.server.phase(), self.server.lr()
        self.given[rank] = (phase, lr)
        self.start_at[rank] = max(self.finish[rank], self.release[rank])
        if self.training_start is None:
            self.training_start = time.perf_counter()
        return Pull(_clone(self.server.state), phase.index, lr, self.server.pushes[rank], waited)

    def _release_blocked(self, at: float) -> list:
        """SSP: answer the held pulls the server now lets go (or stop them once training is over)."""
        answers, now = [], time.perf_counter()
        for rank in self.server.released(r for r, (kind, _, _) in self.held.items() if kind == "pull"):
            _, fut, since = self.held.pop(rank)
            self.seen[rank] = now
            if self.server.done:
                answers.append((fut, Stop("done")))
            else:
                self.release[rank] = at
                answers.append((fut, self._pull(rank, now - since)))
        return answers

    def _close_round(self) -> list:
        """BSP: merge the round; the server says which of its commits is tested and whether to checkpoint after it."""
        ranks = sorted(self.round)
        commits = self.server.push_round(ranks, [self.round[r][0] for r in ranks])
        tested = self.server.tested_commit(commits)
        end = max(self.round[r][1]["modelled_time"] for r in ranks)
        snapshot = _clone(self.server.state) if tested is not None else None
        checkpoint = self.server.checkpoint_due(commits)
        answers, now = [], time.perf_counter()
        for rank, commit in zip(ranks, commits):
            _, entry = self.round.pop(rank)
            last = commit == commits[-1]
            self.release[rank] = end
            self._commit(commit, dict(entry, modelled_time=end), commit == tested, checkpoint and last)
            _, fut, since = self.held.pop(rank)
            self.seen[rank] = now
            answers.append((fut, Ack(commit, snapshot if commit == tested else None, now - since)))
        return answers

    def _commit(self, commit: int, entry: dict, awaiting_test: bool, checkpoint: bool) -> None:
        self.last_commit[entry["rank"]] = commit
        if self.server.done:
            self.training_time = self.elapsed()
        self.log.add(commit, entry, awaiting_test, self.state_dict(commit) if checkpoint else None)

    # -- supervision -----------------------------------------------------------------------------------------
    def _where(self, rank: int) -> str:
        mine = self.last_commit[rank]
        return (f"its last commit was {'none' if mine is None else mine}, the server's last commit was "
                f"{self.server.commits - 1} of {self.plan.total_commits} (0-based)")

    def check(self, workers: LocalWorkers | None) -> str | None:
        """Why the run cannot go on, or None: a failure report, a dead worker process, or a silent worker."""
        with self.lock:
            if self.failure is not None:
                return self.failure
            if self.monitor.diverged:
                return self.monitor.diverged
            for rank, code in (workers.dead() if workers else []):
                if rank not in self.gone:
                    return f"worker {rank} died (exit code {code}); {self._where(rank)}"
            now = time.perf_counter()
            for rank in self.ranks:
                silent = now - self.seen[rank]
                if rank not in self.held and rank not in self.gone and silent > self.timeout:
                    return (f"worker {rank} stopped answering: nothing for {silent:.0f} s "
                            f"(executor.timeout={self.timeout:g}); {self._where(rank)}")
        return None

    def watch(self, workers: LocalWorkers | None, poll: float = 0.1) -> None:
        """Return once every commit is recorded and every worker said bye; raise WorkerFailure before that (and
        Diverged on a NaN or infinite loss)."""
        with self.lock:  # every worker has just joined: silence counts from now
            self.seen = dict.fromkeys(self.ranks, time.perf_counter())
        while True:
            with self.lock:
                complete = self.log.next >= self.plan.total_commits
                if complete and self.gone == set(self.ranks) and not self.monitor.diverged:
                    return
            problem = self.check(workers)
            if problem is not None:
                if problem == self.monitor.diverged:
                    raise Diverged(problem)
                if not complete:
                    raise WorkerFailure(problem)
                log.warning("after the last commit: %s", problem)
                return
            time.sleep(poll)

    def abort(self, reason: str) -> None:
        """Stop every held worker, record what was committed so far (untested commits without a test)."""
        with self.lock:
            self.failure = self.failure or reason
            answers = [(fut, Stop(self.failure)) for _, fut, _ in self.held.values()]
            self.held.clear()
            self.round.clear()
            self.log.flush(abandon=True)
        for fut, value in answers:
            fut.set_result(value)

    # -- results and checkpoints -----------------------------------------------------------------------------
    def elapsed(self) -> float:
        """The server's training wall clock: from the first pull (summed over resumed attempts)."""
        return self.training_before + (time.perf_counter() - self.training_start if self.training_start else 0.0)

    def worker_times(self) -> dict:
        return {str(r): {k: self.times_before[r][k] + self.times[r].get(k, 0.0) for k in self.times_before[r]}
                for r in self.ranks}

    def results(self) -> dict:
        """Extra summary fields: the training time (start to the last commit) and each worker's time breakdown."""
        with self.lock:
            return {"training_time": self.training_time if self.training_time is not None else self.elapsed(),
                    "workers": self.worker_times(), "transport": "torch.distributed.rpc (TensorPipe)"}

    def state_dict(self, commit: int) -> dict:
        return {"executor": "distributed", "commit": commit, "server": self.server.state_dict(),
                "clock": {"finish": dict(self.finish), "release": dict(self.release)},
                "workers": self.worker_times(), "training_time": self.elapsed(), "rng": torch.get_rng_state()}

    def load_state_dict(self, data: dict) -> None:
        self.server.load_state_dict(data["server"])
        self.monitor.load_state_dict(data["monitor"])
        self.finish = {int(r): t for r, t in data["clock"]["finish"].items()}
        self.release = {int(r): t for r, t in data["clock"]["release"].items()}
        self.times_before = {int(r): dict(t) for r, t in data["workers"].items()}
        self.training_before = data["training_time"]


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
