"""Time accounting of a distributed run: each worker's own seconds (compute, communication, evaluation, waiting, as
it measures and reports them) and the server's training wall clock, both summed over resumed attempts."""
from __future__ import annotations

import time
from typing import Iterable

from .messages import TIMES


class WorkerTimes:
    def __init__(self, ranks: Iterable[int]):
        self.ranks = list(ranks)
        self.reported = {r: dict.fromkeys(TIMES + ("mini_epochs",), 0.0) for r in self.ranks}  # this attempt
        self.before = {r: dict.fromkeys(TIMES + ("mini_epochs",), 0.0) for r in self.ranks}  # earlier attempts
        self.training_start: float | None = None  # the first pull of this attempt
        self.training_before = 0.0  # training seconds of earlier attempts
        self.training_time: float | None = None  # set at the last commit

    def report(self, rank: int, times: dict | None) -> None:
        if times:
            self.reported[rank] = dict(times)

    def training_started(self) -> None:
        if self.training_start is None:
            self.training_start = time.perf_counter()

    def training_over(self) -> None:
        self.training_time = self.elapsed()

    def elapsed(self) -> float:
        """The server's training wall clock: from the first pull (summed over resumed attempts)."""
        return self.training_before + (time.perf_counter() - self.training_start if self.training_start else 0.0)

    def workers(self) -> dict:
        return {str(r): {k: self.before[r][k] + self.reported[r].get(k, 0.0) for k in self.before[r]}
                for r in self.ranks}

    def results(self) -> dict:
        """The training time (start to the last commit) and each worker's time breakdown."""
        return {"training_time": self.training_time if self.training_time is not None else self.elapsed(),
                "workers": self.workers()}

    def load(self, workers: dict, training_time: float) -> None:
        self.before = {int(r): dict(t) for r, t in workers.items()}
        self.training_before = training_time
