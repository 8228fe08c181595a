"""The distributed server's commit log: commits reach the Monitor in commit order, each once its test is in.

Workers test the merged model they got back in parallel and send the result with their next pull, so commits are
ready out of order; the log holds them until every earlier one was recorded, and saves the checkpoint taken at a
commit right after recording it, so that a checkpoint and metrics.csv always agree.
"""
from __future__ import annotations

from typing import Dict

from ..stats import EvalStats


class CommitLog:
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
