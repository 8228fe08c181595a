"""The parameter server: the global model, the commit counter, the phase in force, the merge, and the sync policy.

One implementation serves both executors. The server decides *what* may happen (:class:`SyncPolicy`): whether a
worker may pull now (SSP's staleness bound), which commit's merged model is tested (every m-th, and for a BSP round
only its last), and when a checkpoint is due. An executor only decides *when* pushes arrive and *how* weights travel.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence

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


@dataclass(frozen=True)
class SyncPolicy:
    """The synchronisation rules (``ps.sync``, ``ps.staleness``), the test schedule (``train.eval_every``) and the
    checkpoint schedule (``checkpoint_every``, ``checkpoint_minutes``; also at every phase change) of a run."""

    sync: str = "ASP"  # ASP: merge on arrival; SSP: ASP with a staleness bound; BSP: rounds of n pushes
    staleness: int = 0  # SSP: how many pushes a worker may lead the slowest by and still pull
    eval_every: int = 1  # test the merged model every m commits (and always at the last)
    checkpoint_every: int = 0  # 0: only at phase changes
    checkpoint_minutes: float = 0.0  # also once this much wall time passed since the last one; 0: off
    final_window: int = 0  # test every one of the last w commits too (train.eval_final_epochs * n)

    @classmethod
    def of(cls, cfg, plan: Plan) -> "SyncPolicy":
        """The run's rules, from its config (``ps.sync``, ``ps.staleness``, ``train.eval_every``,
        ``checkpoint_every``, ``checkpoint_minutes``, ``train.eval_final_epochs`` counted in commits of the plan)."""
        return cls(cfg.ps.sync, cfg.ps.staleness, cfg.train.eval_every, cfg.checkpoint_every,
                   cfg.checkpoint_minutes, final_window=cfg.train.eval_final_epochs * plan.num_workers)

    @property
    def rounds(self) -> bool:
        """BSP: every worker pushes once per round and the round is merged at once (``push_round``)."""
        return self.sync == "BSP"


class ParameterServer:
    def __init__(self, plan: Plan, state: State, merge_rule: str = "journal", merge_buffers: bool = True,
                 policy: SyncPolicy = SyncPolicy()):
        self.plan = plan
        self.merge_rule = merge_rule
        self.policy = policy
        self.state: State = OrderedDict((k, v.detach().clone()) for k, v in state.items())
        self.keys = mergeable_keys(self.state, merge_buffers)
        self._tensors = [self.state[k] for k in self.keys]
        self.commits = 0
        self.pushes = {rank: 0 for rank in range(1, plan.num_workers + 1)}
        self.checkpointed_at = time.monotonic()  # wall time of the last checkpoint (or of the start)

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
        if self._tensors:  # a replay of the clock (the forecast) has no model: it only counts
            merge_into(self._tensors, [state[k] for k in self.keys], self.merge_rule,
                       self.plan.update_factor(rank))
        return self._count(rank)

    def push_round(self, ranks: Sequence[int], states: Sequence[State]) -> List[int]:
        """BSP: one synchronous round; the global model becomes the factor-weighted mean of all pushed models."""
        if self._tensors:
            average_into(self._tensors, [[s[k] for k in self.keys] for s in states],
                         [self.plan.update_factor(r) for r in ranks])
        return [self._count(r) for r in ranks]

    def _count(self, rank: int) -> int:
        commit = self.commits
        self.commits += 1
        self.pushes[rank] += 1
        return commit

    # -- the sync policy ---------------------------------------------------------------------------------------
    def lead(self, rank: int) -> int:
        """How many pushes ``rank`` is ahead of the slowest worker (SSP's staleness)."""
        return self.pushes[rank] - min(self.pushes.values())

    def may_pull(self, rank: int) -> bool:
        """SSP holds a worker that leads the slowest by more than ``staleness`` pushes; ASP and BSP never hold a pull
        (BSP holds the push instead, until the round is complete)."""
        return self.policy.sync != "SSP" or self.lead(rank) <= self.policy.staleness

    def released(self, held: Iterable[int]) -> List[int]:
        """Of the workers whose pull is held, those that may go on now, in rank order (all of them once training is
        over: they are told to stop)."""
        return [rank for rank in sorted(held) if self.done or self.may_pull(rank)]

    def tested_commit(self, commits: Sequence[int]) -> int | None:
        """The commit, of those just merged, whose merged model is tested: one is due every ``eval_every`` commits,
        at each of the last ``final_window`` commits and at the last; a BSP round is tested once, after its last
        commit, when any of its commits is due."""
        every, last = self.policy.eval_every, self.plan.total_commits - 1
        window_start = self.plan.total_commits - self.policy.final_window
        due = any((c + 1) % every == 0 or c >= window_start or c == last for c in commits)
        return commits[-1] if due and commits else None

    def checkpoint_due(self, commits: Sequence[int]) -> bool:
        """Whether to checkpoint after the commits just merged (one push, or a BSP round): when a phase starts with
        the next commit, a multiple of ``checkpoint_every`` commits was reached within them, or ``checkpoint_minutes``
        of wall time passed since the last checkpoint (so that a run stopped before its first phase change loses
        little); never after the last commit (the run then completes). A True answer counts as the checkpoint
        taken. When checkpoints are taken does not change what a run computes."""
        if self.done:
            return False
        starts, every = {p.start for p in self.plan.phases}, self.policy.checkpoint_every
        now, minutes = time.monotonic(), self.policy.checkpoint_minutes
        due = (any(c + 1 in starts or bool(every and (c + 1) % every == 0) for c in commits)
               or bool(minutes and now - self.checkpointed_at >= 60 * minutes))
        if due:
            self.checkpointed_at = now
        return due

    # -- checkpoints -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"state": {k: v.clone() for k, v in self.state.items()}, "commits": self.commits,
                "pushes": dict(self.pushes)}

    def load_state_dict(self, data: dict) -> None:
        for k, v in data["state"].items():
            self.state[k].copy_(v)
        self.commits = data["commits"]
        self.pushes = {int(k): v for k, v in data["pushes"].items()}
