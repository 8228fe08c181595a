"""A worker: pull the global model, train one mini-epoch at its phase's batch size and resolution, push.

As in the authors' journal code, the optimizer (momentum) persists across mini-epochs within a phase although every
pull overwrites the weights, and is reset at a phase change (Keras re-compiles at LR/stage changes):
``momentum_reset='phase'``. The COMPSAC code compiles a new SGD before every mini-epoch (``'mini_epoch'``);
``'never'`` keeps it for the whole run.
All randomness of a mini-epoch (sampling, augmentation, dropout) is derived from (seed, rank, local round), so
a run is repeatable whatever the order in which workers train, and a resumed run continues bit for bit.
"""
from __future__ import annotations

import hashlib
from typing import Dict

import torch

from ..data import Pipeline
from ..plan import Phase, Plan
from ..local_training import LocalTrainer, TrainStats

State = Dict[str, torch.Tensor]


def derive_seed(*parts) -> int:
    """A 63-bit seed from any tuple of ints/strings (stable across processes and Python versions)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def mini_epoch_indices(sampling: str, generator: torch.Generator, dataset_size: int, count: int,
                       shard: torch.Tensor | None = None) -> torch.Tensor:
    """The sample indices of one mini-epoch.

    random_subset (authors): a fresh random subset of the whole training set for every worker and mini-epoch, so
    workers overlap; shard: a fresh order of the worker's own disjoint shard. Wraps around if count exceeds the pool.
    """
    pool = shard if sampling == "shard" else None
    size = len(pool) if pool is not None else dataset_size
    parts, have = [], 0
    while have < count:
        perm = torch.randperm(size, generator=generator)
        parts.append(perm if pool is None else pool[perm])
        have += size
    return torch.cat(parts)[:count]


def shards(plan: Plan, dataset_size: int, seed: int) -> Dict[int, torch.Tensor]:
    """Disjoint shards: small-batch workers d_S samples each, large-batch workers d_L each, of one fixed permutation."""
    perm = torch.randperm(dataset_size, generator=torch.Generator().manual_seed(derive_seed(seed, "shards")))
    out, start = {}, 0
    for rank in range(1, plan.num_workers + 1):
        size = min(plan.data_amount(rank), dataset_size)
        # rounding can make the amounts sum to a few more than d: the last shard then overlaps by those few
        out[rank] = perm[start:start + size] if start + size <= dataset_size else perm[-size:]
        start += size
    return out


class Worker:
    def __init__(self, rank: int, plan: Plan, trainer: LocalTrainer, pipeline: Pipeline, dataset_size: int,
                 seed: int, sampling: str = "random_subset", momentum_reset: str = "phase",
                 shard: torch.Tensor | None = None):
        self.rank, self.plan, self.trainer, self.pipeline = rank, plan, trainer, pipeline
        self.model = trainer.model
        self.dataset_size, self.seed, self.sampling = dataset_size, seed, sampling
        self.momentum_reset = momentum_reset
        self.shard = shard
        self.local_round = 0
        self.phase: Phase | None = None
        self.lr = 0.0

    @property
    def is_small(self) -> bool:
        return self.plan.is_small(self.rank)

    @torch.no_grad()
    def pull(self, state: State, phase: Phase, lr: float) -> None:
        """Copy the global model into this worker's model in place; the optimizer keeps its momentum buffers unless
        ``momentum_reset`` says this pull starts a new one (every pull, or a phase change)."""
        for name, tensor in self.model.state_dict().items():
            tensor.copy_(state[name])
        first = self.phase is None
        changed = first or phase.index != self.phase.index
        if changed:
            self.model.set_dropout(phase.dropout)
        if self.momentum_reset == "mini_epoch" or (self.momentum_reset == "phase" and changed and not first):
            self.trainer.reset_optimizer()
        self.phase, self.lr = phase, lr

    def train_mini_epoch(self) -> TrainStats:
        phase = self.phase
        batch, samples = self.plan.batch_size(self.rank, phase), self.plan.samples(self.rank, phase)
        seed = derive_seed(self.seed, self.rank, self.local_round)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(derive_seed(seed, "dropout"))
        indices = mini_epoch_indices(self.sampling, generator, self.dataset_size, samples, self.shard)
        stats = self.trainer.train(self.pipeline.train_batches(indices, batch, phase.resolution, generator,
                                                               partial_last=True), self.lr)
        self.local_round += 1
        return stats

    def state(self) -> State:
        return self.model.state_dict()

    def state_dict(self) -> dict:
        return {"model": {k: v.clone() for k, v in self.model.state_dict().items()},
                "optimizer": self.trainer.optimizer_state(), "local_round": self.local_round,
                "phase": None if self.phase is None else self.phase.index, "lr": self.lr,
                "scaler": None if self.trainer.scaler is None else self.trainer.scaler.state_dict()}  # AMP loss scale

    @torch.no_grad()
    def load_state_dict(self, data: dict) -> None:
        self.model.load_state_dict(data["model"])
        self.local_round, self.lr = data["local_round"], data["lr"]
        self.phase = None if data["phase"] is None else self.plan.phases[data["phase"]]
        if self.phase is not None:
            self.model.set_dropout(self.phase.dropout)
        self.trainer.load_optimizer_state(data["optimizer"])
        if data.get("scaler") and self.trainer.scaler is not None:  # checkpoints before the loss scale have none
            self.trainer.scaler.load_state_dict(data["scaler"])
