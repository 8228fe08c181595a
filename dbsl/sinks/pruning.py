"""Optuna pruning sink: reports the test accuracy at every evaluation to a trial, and stops a hopeless run.

The run stops by raising ``optuna.TrialPruned`` from the commit that was evaluated; ``dbsl.one_run.execute`` then
records the run as failed with that error, keeping its checkpoint, and ``dbsl.tune`` tells Optuna it was pruned.
"""
from __future__ import annotations

import optuna


class PruningSink:
    def __init__(self, trial: optuna.Trial, metric: str = "test_top1"):
        self.trial, self.metric = trial, metric

    def log_commit(self, row: dict) -> None:
        value = row.get(self.metric)
        if value is None or value == "":
            return
        self.trial.report(float(value), step=int(row["commit"]))
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at commit {row['commit']}: {self.metric}={float(value):.4f}")

    def log_summary(self, summary: dict) -> None:
        pass

    def finish(self, status: str) -> None:
        pass
