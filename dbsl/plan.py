"""The Plan: a pure function of (config, dataset size, hardware profile) giving everything a run does.

The four schemes are two switches of one plan: dual batch (n_S > 0 small-batch workers, section 3) and cyclic
progressive learning (CPL, section 4: inside every LR stage, resolution, dropout and B_L/B_S step low -> high).
Milestones are in global commits (epoch x n), as in the authors' code; commit c (0-based) is the (c+1)-th push.

``dbsl plan <overrides>`` (:mod:`dbsl.cli.plan`, also ``python -m dbsl.plan``) prints the plan as a table, or as JSON.
"""
from __future__ import annotations

import bisect
import logging
import math
from dataclasses import asdict, dataclass, field
from typing import List, Tuple

from .config import Config
from .data.facts import DATASETS
from .timemodel import (BudgetError, HardwareProfile, data_split, extra_time_ratio_for, profile_from_config,
                        small_batch, update_factor)

log = logging.getLogger("dbsl")

# Batches per mini-epoch of d samples at batch B (train.steps): the journal code trains round(d/B) full batches
# (tf.data take()); the COMPSAC code's generator yields ceil(d/B), the last one partial.
STEP_COUNTS = {"round": round, "ceil": math.ceil}

def dataset_size(cfg: Config) -> int:
    """The training-set size d of the config's dataset, without loading it (dbsl/data/facts.py)."""
    d = cfg.dataset
    full = d.synthetic_train if d.name == "synthetic" else DATASETS[d.name].train_size
    return min(d.num_train, full) if d.num_train else full


@dataclass(frozen=True)
class Phase:
    """A stretch of commits with one (LR stage, resolution, dropout, B_L, B_S): a CPL sub-stage, or an LR stage."""

    index: int
    lr_stage: int
    start: int  # first commit of the phase
    end: int  # one past its last commit
    lr: float
    resolution: int
    dropout: float
    batch_large: int  # B_L
    batch_small: int  # B_S (0 without small-batch workers)
    steps_large: int  # batches per large mini-epoch: round(d_L / B_L), or ceil(d_L / B_L) with train.steps=ceil
    steps_small: int  # round(d_S / B_S), or ceil(d_S / B_S)
    time_large: float  # modelled seconds of a large mini-epoch (Eq. 2 with the step count)
    time_small: float


@dataclass(frozen=True)
class Plan:
    scheme: str
    dataset_size: int  # d
    num_workers: int  # n
    num_small: int  # n_S
    extra_time_ratio: float  # k
    data_large: int  # d_L
    data_small: int  # d_S
    update_factor_small: float  # f of a small-batch worker (large workers: 1)
    total_commits: int  # epochs x n
    warmup_commits: int
    warmup_start_lr: float
    hardware: str
    phases: Tuple[Phase, ...] = field(default_factory=tuple)
    step_count: str = "round"  # train.steps: round (full batches only) or ceil (the last batch partial)

    # -- lookups -------------------------------------------------------------------------------------------
    def phase_at(self, commit: int) -> Phase:
        """The phase in force once ``commit`` pushes have been merged (a worker reads it at its next pull)."""
        starts = [p.start for p in self.phases]
        return self.phases[max(0, bisect.bisect_right(starts, min(commit, self.total_commits - 1)) - 1)]

    def lr_at(self, commit: int) -> float:
        """The stage LR, with the optional linear warm-up over the first commits."""
        phase = self.phase_at(commit)
        if commit < self.warmup_commits:
            return self.warmup_start_lr + (phase.lr - self.warmup_start_lr) * commit / self.warmup_commits
        return phase.lr

    def is_small(self, rank: int) -> bool:
        """Ranks 1..n_S are small-batch workers, as in the authors' code (rank 0 is the server)."""
        return 1 <= rank <= self.num_small

    def batch_size(self, rank: int, phase: Phase) -> int:
        return phase.batch_small if self.is_small(rank) else phase.batch_large

    def steps(self, rank: int, phase: Phase) -> int:
        return phase.steps_small if self.is_small(rank) else phase.steps_large

    def data_amount(self, rank: int) -> int:
        return self.data_small if self.is_small(rank) else self.data_large

    def samples(self, rank: int, phase: Phase) -> int:
        """Samples a mini-epoch trains on: steps x B full batches (round), or exactly d_L / d_S (ceil: the last
        batch is partial, as the COMPSAC code's ImageDataGenerator.flow)."""
        if self.step_count == "ceil":
            return self.data_amount(rank)
        return self.steps(rank, phase) * self.batch_size(rank, phase)

    def update_factor(self, rank: int) -> float:
        return self.update_factor_small if self.is_small(rank) else 1.0

    def mini_epoch_time(self, rank: int, phase: Phase) -> float:
        return phase.time_small if self.is_small(rank) else phase.time_large

    @property
    def epoch_commits(self) -> int:
        return self.num_workers

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Plan":
        data = dict(data)
        data["phases"] = tuple(Phase(**p) for p in data["phases"])
        return cls(**data)


def stage_boundaries(cfg: Config) -> List[Tuple[int, int, int, int]]:
    """(lr_stage, resolution index, start epoch, end epoch) for each phase of the schedule."""
    s, o = cfg.schedule, cfg.optim
    stage_ends = list(o.lr_milestones) + [s.epochs]
    stage_starts = [0] + list(o.lr_milestones)
    last = len(s.resolutions) - 1
    if not cfg.scheme.cyclic:
        return [(i, last, lo, hi) for i, (lo, hi) in enumerate(zip(stage_starts, stage_ends))]
    phases = []
    if s.cycle_ends:
        ends = list(s.cycle_ends)
        starts = [0] + ends[:-1]
        # resolutions advance cyclically at every sub-stage end (the authors' itertools.cycle)
        for j, (lo, hi) in enumerate(zip(starts, ends)):
            stage = bisect.bisect_left(stage_ends, hi)
            phases.append((stage, j % len(s.resolutions), lo, hi))
        return phases
    count = len(s.resolutions)
    for i, (lo, hi) in enumerate(zip(stage_starts, stage_ends)):
        cuts = [lo + round((hi - lo) * j / count) for j in range(count + 1)]
        for j in range(count):
            if cuts[j + 1] > cuts[j]:
                phases.append((i, j, cuts[j], cuts[j + 1]))
    short = [hi - lo for lo, hi in zip(stage_starts, stage_ends) if hi - lo < count]
    if count > 1 and all(r == last for _, r, _, _ in phases):
        lengths = ", ".join(str(hi - lo) for lo, hi in zip(stage_starts, stage_ends))
        log.warning("CPL has no cycle here: every LR stage (%s epochs) is shorter than one epoch per resolution (%d), "
                    "so every epoch trains at %d px, as without CPL; lengthen schedule.epochs, move "
                    "optim.lr_milestones or give schedule.cycle_ends", lengths, count, s.resolutions[-1])
    elif count > 1 and short:
        log.warning("CPL: %d LR stage(s) of %s epoch(s) hold fewer than one epoch per resolution (%d): they skip the "
                    "lower resolutions", len(short), "/".join(map(str, short)), count)
    return phases


def large_batch(cfg: Config, profile: HardwareProfile, r_idx: int) -> int:
    """B_L at the schedule's ``r_idx``-th resolution: ``schedule.batch_large`` when set, else the hardware profile's."""
    s = cfg.schedule
    return s.batch_large[r_idx] if s.batch_large is not None else profile.batch_large[s.resolutions[r_idx]]


def batch_ratio_to_k(cfg: Config, ratio: float, num_small: int) -> float:
    """The k (rounded to 4 decimals) whose Eq. 8 small batch is ``ratio`` x B_L at the highest resolution."""
    profile = profile_from_config(cfg.hardware)
    b_large = large_batch(cfg, profile, -1)
    k = extra_time_ratio_for(profile.model(cfg.schedule.resolutions[-1]), ratio * b_large, b_large,
                             cfg.ps.num_workers, num_small)
    return round(k, 4)


def build_plan(cfg: Config, dataset_size: int, profile: HardwareProfile | None = None) -> Plan:
    """Pure: the plan of a run from its config, the training-set size d and the hardware profile."""
    profile = profile or profile_from_config(cfg.hardware)
    s, o = cfg.schedule, cfg.optim
    n = cfg.ps.num_workers
    n_small = cfg.dbsl.num_small if cfg.scheme.dual_batch else 0
    k = cfg.dbsl.extra_time_ratio
    split = data_split(dataset_size, n, n_small, k, cfg.dbsl.rounding)
    phases = []
    for index, (stage, r_idx, lo, hi) in enumerate(stage_boundaries(cfg)):
        res = s.resolutions[r_idx]
        model = profile.model(res)
        b_large = large_batch(cfg, profile, r_idx)
        b_small = small_batch(model, b_large, dataset_size, n, k, split.data_small, cfg.dbsl.rounding, res) \
            if n_small else 0
        steps_large = STEP_COUNTS[cfg.train.steps](split.data_large / b_large)
        steps_small = STEP_COUNTS[cfg.train.steps](split.data_small / b_small) if n_small else 0
        if steps_large < 1 and n_small < n:
            raise BudgetError(f"schedule.batch_large: B_L={b_large} at {res} px exceeds the {split.data_large} samples "
                              f"a large-batch worker trains per mini-epoch (d={dataset_size}, n={n}); lower "
                              "schedule.batch_large or use more data (dataset.num_train)")
        if n_small and steps_small < 1:
            raise BudgetError(f"dbsl.num_small={n_small}: B_S={b_small} at {res} px exceeds d_S={split.data_small}; "
                              "lower dbsl.num_small or dbsl.extra_time_ratio")
        phases.append(Phase(
            index=index, lr_stage=stage, start=lo * n, end=hi * n, lr=o.lr * o.lr_gamma ** stage, resolution=res,
            dropout=s.dropouts[r_idx], batch_large=b_large, batch_small=b_small, steps_large=steps_large,
            steps_small=steps_small, time_large=model.mini_epoch_time(b_large, steps_large),
            time_small=model.mini_epoch_time(b_small, steps_small) if n_small else 0.0))
    return Plan(
        scheme=cfg.scheme.name, dataset_size=dataset_size, num_workers=n, num_small=n_small, extra_time_ratio=k,
        data_large=split.data_large, data_small=split.data_small,
        update_factor_small=update_factor(split, cfg.ps.update_factor) if n_small else 1.0,
        total_commits=s.epochs * n,
        warmup_commits=0 if (o.warmup_baseline_only and n_small) else round(o.warmup_epochs * n), warmup_start_lr=o.warmup_start_lr,
        hardware=profile.name, phases=tuple(phases), step_count=cfg.train.steps)


if __name__ == "__main__":  # python -m dbsl.plan: the command is dbsl.cli.plan
    from .cli.plan import main

    raise SystemExit(main())
