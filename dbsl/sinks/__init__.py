"""Sinks: extra consumers of each commit's metrics row and of the final summary, beside the run record on disk.

A sink has ``log_commit(row)``, ``log_summary(summary)`` and ``finish(status)`` (:class:`Sink`); the
:class:`~dbsl.monitor.Monitor` calls them. ``wandb.WandbSink`` logs to Weights & Biases; ``pruning.PruningSink``
reports test accuracy to an Optuna trial.
"""
from __future__ import annotations

from typing import Protocol


class Sink(Protocol):
    """A consumer of every commit's metrics row and of the final summary."""

    def log_commit(self, row: dict) -> None: ...
    def log_summary(self, summary: dict) -> None: ...
    def finish(self, status: str) -> None: ...

