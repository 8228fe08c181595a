"""The parameter server: the global model, the commit counter, the phase in force, and the merge.

One implementation serves both executors; an executor only decides when pushes arrive and how weights travel.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Sequence

import torch

from ..plan import Phase, Plan
from .merge import average_into, merge_into

State = Dict[str, torch.Tensor]
BN_BUFFERS = ("running_mean", "running_var")


def mergeable_keys(state: State, merge_buffers: bool = True) -> List[str]:
    """Floating-point entries the server merges: all weights, and BatchNorm running statistics unless disabled
    (Keras merges every entry of get_weights(); integer counters such as num_batches_tracked keep the server's)."""
    return [k for k, v in state.items()
            if v.is_floating_point() and (merge_buffers or not k.endswith(BN_BUFFERS))]


class ParameterServer:
    def __init__(self, plan: Plan, state: State, merge_rule: str = "journal", merge_buffers: bool = True):
        self.plan = plan
        self.merge_rule = merge_rule
        self.state: State = OrderedDict((k, v.detach().clone()) for k, v in state.items())
        self.keys = mergeable_keys(self.state, merge_buffers)
        self._tensors = [self.state[k] for k in self.keys]
        self.commits = 0
        self.pushes = {rank: 0 for rank in range(1, plan.num_workers + 1)}

    @property
    def done(self) -> bool:
        return self.commits >= self.plan.total_commits

    def phase(self) -> Phase:
        """The phase a worker pulling now trains under (milestones counted in global commits)."""
        return self.plan.phase_at(self.commits)

    def lr(self) -> float:
        return self.plan.lr_at(self.commits)

    def push(self, rank: int, state: State) -> int | None:
        """ASP/SSP: merge one worker's model on arrival; returns the commit index, or None once training is over
        (the authors' server neither merges nor logs pushes past the last commit)."""
        if self.done:
            return None
        merge_into(self._tensors, [state[k] for k in self.keys], self.merge_rule, self.plan.update_factor(rank))
        return self._count(rank)

    def push_round(self, ranks: Sequence[int], states: Sequence[State]) -> List[int]:
        """BSP: one synchronous round; the global model becomes the factor-weighted mean of all pushed models."""
        average_into(self._tensors, [[s[k] for k in self.keys] for s in states],
                     [self.plan.update_factor(r) for r in ranks])
        return [self._count(r) for r in ranks]

    def _count(self, rank: int) -> int:
        commit = self.commits
        self.commits += 1
        self.pushes[rank] += 1
        return commit

    def lead(self, rank: int) -> int:
        """How many pushes ``rank`` is ahead of the slowest worker (SSP's staleness)."""
        return self.pushes[rank] - min(self.pushes.values())

    def state_dict(self) -> dict:
        return {"state": {k: v.clone() for k, v in self.state.items()}, "commits": self.commits,
                "pushes": dict(self.pushes)}

    def load_state_dict(self, data: dict) -> None:
        for k, v in data["state"].items():
            self.state[k].copy_(v)
        self.commits = data["commits"]
        self.pushes = {int(k): v for k, v in data["pushes"].items()}
