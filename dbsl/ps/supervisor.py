"""Supervision of a distributed run: whether it can go on (check), waiting for its end while it can (watch), and
stopping it when it cannot (abort).

The run cannot go on when a worker reported a failure, a worker process died before saying bye, a worker stayed
silent for ``executor.timeout`` seconds while the server was not holding it, or the loss diverged. The service's
handlers tell the supervisor each sign of life (:meth:`heard`, :meth:`left`, :meth:`committed`, :meth:`fail`) under
the service's lock.
"""
from __future__ import annotations

import logging
import time
from typing import Iterable, Protocol

from ..errors import Diverged, RunFailure

log = logging.getLogger("dbsl")


class WorkerFailure(RunFailure):
    """A worker died, failed or stopped answering; the message names it and the last commit."""


class Supervised(Protocol):
    """What the supervisor needs of the service."""

    lock: object

    def progress(self) -> tuple[bool, int, set, str | None]:
        """(every commit recorded, the server's commits so far, the ranks it holds, the divergence); under the lock."""

    def stop_held(self, reason: str) -> list:
        """Answer every held worker with Stop(reason) and record what was committed; the answers to send."""


class Supervisor:
    def __init__(self, service: Supervised, ranks: Iterable[int], timeout: float, total_commits: int):
        self.service, self.ranks, self.timeout, self.total = service, list(ranks), timeout, total_commits
        self.seen = {r: time.perf_counter() for r in self.ranks}
        self.gone: set = set()  # said bye
        self.last_commit: dict = {r: None for r in self.ranks}
        self.failure: str | None = None

    # -- signs of life (the caller holds the service's lock) ---------------------------------------------------
    def heard(self, rank: int) -> None:
        self.seen[rank] = time.perf_counter()

    def left(self, rank: int) -> None:
        self.gone.add(rank)

    def committed(self, rank: int, commit: int) -> None:
        self.last_commit[rank] = commit

    def fail(self, reason: str) -> None:
        """The first failure is the run's (later ones follow from it)."""
        if self.failure is None:
            self.failure = reason

    def where(self, rank: int, server_commits: int) -> str:
        mine = self.last_commit[rank]
        return (f"its last commit was {'none' if mine is None else mine}, the server's last commit was "
                f"{server_commits - 1} of {self.total} (0-based)")

    # -- check, watch, abort -----------------------------------------------------------------------------------
    def check(self, workers) -> str | None:
        """Why the run cannot go on, or None: a failure report, a dead worker process, or a silent worker."""
        with self.service.lock:
            _, commits, held, diverged = self.service.progress()
            if self.failure is not None:
                return self.failure
            if diverged:
                return diverged
            for rank, code in (workers.dead() if workers else []):
                if rank not in self.gone:
                    return f"worker {rank} died (exit code {code}); {self.where(rank, commits)}"
            now = time.perf_counter()
            for rank in self.ranks:
                silent = now - self.seen[rank]
                if rank not in held and rank not in self.gone and silent > self.timeout:
                    return (f"worker {rank} stopped answering: nothing for {silent:.0f} s "
                            f"(executor.timeout={self.timeout:g}); {self.where(rank, commits)}")
        return None

    def watch(self, workers, poll: float = 0.1) -> None:
        """Return once every commit is recorded and every worker said bye; raise WorkerFailure before that (and
        Diverged on a NaN or infinite loss)."""
        with self.service.lock:  # every worker has just joined: silence counts from now
            self.seen = dict.fromkeys(self.ranks, time.perf_counter())
        while True:
            with self.service.lock:
                complete, _, _, diverged = self.service.progress()
                if complete and self.gone == set(self.ranks) and not diverged:
                    return
            problem = self.check(workers)
            if problem is not None:
                with self.service.lock:
                    diverged = self.service.progress()[3]
                if problem == diverged:
                    raise Diverged(problem)
                if not complete:
                    raise WorkerFailure(problem)
                log.warning("after the last commit: %s", problem)
                return
            time.sleep(poll)

    def abort(self, reason: str) -> None:
        """Stop every held worker and record what was committed so far (untested commits without a test)."""
        with self.service.lock:
            self.fail(reason)
            answers = self.service.stop_held(self.failure)
        for fut, value in answers:
            fut.set_result(value)
