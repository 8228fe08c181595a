"""Typed configuration of a dbsl run (Hydra structured configs).

Every YAML file under ``dbsl/conf`` is merged onto :class:`Config`, so a wrong type or an unknown key fails
in Hydra/OmegaConf with the key's full name. Range and consistency checks that types cannot express live in
:func:`validate`; they raise :class:`ConfigError` naming the key and the fix, before any work starts.

Names follow the paper: ``num_small`` is n_S, ``extra_time_ratio`` is k, ``update_factor`` is f,
``batch_large`` is B_L, a ``mini_epoch`` is one worker's pull-train-push round.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
from dataclasses import dataclass, field
from typing import List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from .data.facts import DATASET_NAMES
from .errors import UserError
from .identity import repeated_key


class ConfigError(UserError):
    """A configuration value that cannot work; the message names the key and the fix."""


@dataclass
class SchemeConfig:
    """The four schemes are two switches of one plan (baseline=off/off, dbsl=on/off, cpl=off/on, hybrid=on/on)."""

    name: str = "baseline"
    dual_batch: bool = False  # DBSL: n_S workers train at the small batch B_S
    cyclic: bool = False  # CPL: resolution, dropout and B_L cycle low->high inside every LR stage


@dataclass
class DualBatchConfig:
    num_small: int = 0  # n_S: workers 1..n_S use B_S (only when scheme.dual_batch)
    extra_time_ratio: float = 1.05  # k: an epoch may cost at most k times the baseline's
    rounding: str = "round"  # round: journal code (Python round); floor: COMPSAC code (int())


@dataclass
class PSConfig:
    num_workers: int = 4  # n
    # journal: w=(w+f*w_i)/(1+f); compsac: w=((2-f)*w+f*w_i)/2; replace: w=w_i (no averaging: with one worker, plain
    # SGD through the server, the one-process reference)
    merge_rule: str = "journal"
    update_factor: str = "linear"  # linear: f=d_S/d_L; sqrt: f=sqrt(d_S/d_L); none: f=1
    sync: str = "ASP"  # ASP (paper), BSP, SSP
    staleness: int = 1  # SSP: max commits the fastest worker may lead the slowest
    merge_buffers: bool = True  # merge BatchNorm running statistics too (Keras merges all weights)


@dataclass
class OptimConfig:
    lr: float = 0.2
    lr_milestones: List[int] = field(default_factory=lambda: [80, 120])  # epochs
    lr_gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up (COMPSAC baseline: 5 epochs from 0.02)
    warmup_start_lr: float = 0.0
    warmup_baseline_only: bool = False  # COMPSAC: only the n_S=0 baseline was warmed up
    momentum: float = 0.9
    kernel_l2: float = 1e-4  # Keras L2 regulariser on conv/dense kernels: loss += l2*||W||^2
    decoupled_weight_decay: float = 1e-4  # Keras SGD(weight_decay): w -= lr*wd*w on every variable
    weight_decay: float = 0.0  # PyTorch SGD's coupled weight decay
    # when a worker starts a new optimizer (momentum from zero): phase: at LR/CPL stage changes (journal code's
    # re-compile); mini_epoch: before every mini-epoch (COMPSAC code compiles a new SGD each time); never
    momentum_reset: str = "phase"
    reset_on_phase_change: Optional[bool] = None  # deprecated: true = momentum_reset=phase, false = never


@dataclass
class ScheduleConfig:
    epochs: int = 140
    resolutions: List[int] = field(default_factory=lambda: [32])  # CPL cycle, low->high; off-cycle uses the last
    dropouts: List[float] = field(default_factory=lambda: [0.2])  # one per resolution
    batch_large: Optional[List[int]] = None  # B_L per resolution; None: the hardware profile's
    cycle_ends: List[int] = field(default_factory=list)  # epochs ending each CPL sub-stage; []: equal split


@dataclass
class TrainConfig:
    sampling: str = "random_subset"  # random_subset: authors (fresh subset per mini-epoch); shard: disjoint shards
    eval_every: int = 1  # evaluate the merged model every m commits (and always at the last)
    # and every commit of the last E epochs (0: none): a final window that holds every worker's merges, so that no
    # scheme decides whose merge the endpoint tests (the report's endpoint final_window:E)
    eval_final_epochs: int = 0
    eval_batch_size: int = 1000
    # batches per mini-epoch of d samples at batch B: round: round(d/B) full batches (journal code's take());
    # ceil: ceil(d/B), the last one partial (COMPSAC code's ImageDataGenerator.flow: 13125/500 -> 27)
    steps: str = "round"
    amp: bool = True  # CUDA only: autocast (float16) + GradScaler
    channels_last: bool = True  # NHWC convolutions, training and evaluation (faster on CPU: benchmarks/)
    threads: int = 0  # torch threads on CPU; 0: leave torch's default
    cpu_isa: str = "native"  # native: the fastest kernels this CPU has; avx2: pin ATen and oneDNN to AVX2 (runs agree
    #                          bit for bit across x86 CPUs with AVX2, at a cost; README "Determinism")


@dataclass
class DatasetConfig:
    name: str = "synthetic"  # synthetic | fashion_mnist | cifar10 | cifar100 | imagenet
    root: str = "data"
    download: bool = False
    # paper: flip+rotation+zoom (journal code's Keras layers); shift: flip + continuous shift by up to 0.1 of the
    # size, nearest-edge fill (COMPSAC code's ImageDataGenerator); padcrop: CIFAR pad-crop-flip; none
    augment: str = "paper"
    mean: Optional[List[float]] = None  # None: the dataset's own; the authors used ImageNet's with std 0.299
    std: Optional[List[float]] = None
    num_train: int = 0  # 0: all; else a fixed random subset (seeded)
    num_test: int = 0
    skip_bad_images: bool = False  # imagenet: train without the images that cannot be decoded (default: an error)
    # synthetic only
    num_classes: int = 10
    channels: int = 3
    resolution: int = 32
    synthetic_train: int = 2048
    synthetic_test: int = 512


@dataclass
class ModelConfig:
    name: str = "resnet18"
    width: int = 64  # 64: the standard 11.2 M-parameter ResNet-18; 16 for CPU experiments
    stem: str = "cifar"  # cifar: 3x3/1 conv, no max-pool; imagenet: 7x7/2 conv + max-pool
    # BatchNorm in Keras terms: running = bn_momentum*running + (1 - bn_momentum)*batch, i.e. PyTorch's
    # BatchNorm2d(momentum=1 - bn_momentum). Journal model: 0.9 and 1.001e-5; COMPSAC model (Keras defaults): 0.99, 1e-3
    bn_momentum: float = 0.9
    bn_eps: float = 1.001e-5
    conv_bias: bool = False  # convolutions with a bias (COMPSAC model); the journal model has none


@dataclass
class ResolutionProfile:
    resolution: int = MISSING
    a: float = 0.0  # seconds per sample (slope), Eq. 2
    b: float = 0.0  # seconds per batch (intercept), Eq. 2
    batch_large: int = MISSING  # B_L: the largest batch that fits
    batch_sizes: List[int] = field(default_factory=list)  # measured table (kind=table)
    batch_times: List[float] = field(default_factory=list)  # seconds per batch at batch_sizes


@dataclass
class HardwareConfig:
    name: str = "gtx1080_cifar"
    description: str = ""
    kind: str = "linear"  # linear: t(B)=a*B+b; table: monotone interpolation of measured times
    resolutions: List[ResolutionProfile] = field(default_factory=list)


@dataclass
class ExecutorConfig:
    name: str = "simulated"  # simulated | distributed
    jitter: float = 0.0  # simulated: relative s.d. of each mini-epoch's modelled duration (seeded)
    timeout: float = 300.0  # distributed: seconds without a worker's answer before the run fails
    master_addr: str = "127.0.0.1"
    master_port: int = 0  # 0: a free port


@dataclass
class LoggerConfig:
    progress: bool = True  # a progress bar when stderr is a terminal
    wandb: bool = False
    project: str = "dbsl"
    entity: Optional[str] = None
    mode: str = "auto"  # auto: online with an API key, else offline; online | offline | disabled
    group: Optional[str] = None
    tags: List[str] = field(default_factory=list)


@dataclass
class Config:
    scheme: SchemeConfig = field(default_factory=SchemeConfig)
    dbsl: DualBatchConfig = field(default_factory=DualBatchConfig)
    ps: PSConfig = field(default_factory=PSConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    name: str = "default"  # the experiment preset's name, recorded
    sweep_name: str = "sweep"  # multirun directory: ${results_dir}/sweeps/${sweep_name}/<overrides>
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    results_dir: str = "results"
    output_dir: str = "results/runs/default"  # the run record's directory (Hydra sets it to its output dir)
    resume: bool = True  # continue an interrupted run from its checkpoint; skip a completed one
    overwrite: bool = False  # start again even if the run directory holds a completed run
    fail_fast: bool = False  # in a multirun, stop the sweep at the first failing run
    checkpoint_every: int = 0  # commits between checkpoints besides the phase changes; 0: phase changes only
    checkpoint_minutes: float = 10.0  # also a checkpoint once this much wall time passed since the last one; 0: off


def register() -> None:
    ConfigStore.instance().store(name="dbsl_schema", node=Config)


# The options whose values name code, and the code each value runs ("module:attribute", imported when used by
# :func:`implementation`): one table, so that a new merge rule, augmentation or executor is added here only.
IMPLEMENTATIONS = {
    "ps.merge_rule": {"journal": "dbsl.ps.merge:journal_weights", "compsac": "dbsl.ps.merge:compsac_weights",
                      "replace": "dbsl.ps.merge:replace_weights"},
    "dataset.augment": {"paper": "dbsl.data.augment:PaperAugment", "shift": "dbsl.data.augment:ShiftAugment",
                        "padcrop": "dbsl.data.augment:PadCropAugment", "none": "dbsl.data.augment:NoAugment"},
    "executor.name": {"simulated": "dbsl.ps.simulated:run_simulated",
                      "distributed": "dbsl.ps.distributed:run_distributed"},
}

CHOICES = {
    **{key: tuple(table) for key, table in IMPLEMENTATIONS.items()},
    "dbsl.rounding": ("round", "floor"),
    "ps.update_factor": ("linear", "sqrt", "none"),
    "ps.sync": ("ASP", "BSP", "SSP"),
    "optim.momentum_reset": ("phase", "mini_epoch", "never"),
    "train.sampling": ("random_subset", "shard"),
    "train.cpu_isa": ("native", "avx2"),
    "train.steps": ("round", "ceil"),
    "dataset.name": DATASET_NAMES,
    "model.name": ("resnet18",),
    "model.stem": ("cifar", "imagenet"),
    "hardware.kind": ("linear", "table"),
    "logger.mode": ("auto", "online", "offline", "disabled"),
}


def implementation(key: str, name: str):
    """The code that value ``name`` of option ``key`` runs (:data:`IMPLEMENTATIONS`); a value config validation would
    have refused is a ConfigError naming the valid ones."""
    table = IMPLEMENTATIONS[key]
    if name not in table:
        raise ConfigError(f"{key}={name!r}: must be one of {', '.join(table)}")
    module, attribute = table[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def _get(cfg: Config, key: str):
    value = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _require(condition: bool, key: str, value, why: str) -> None:
    if not condition:
        raise ConfigError(f"{key}={value!r}: {why}")


def _migrate(cfg: Config) -> None:
    """The deprecated ``optim.reset_on_phase_change`` (run records before momentum_reset) as ``optim.momentum_reset``:
    true is the default ``phase``, false is ``never``."""
    o = cfg.optim
    if o.reset_on_phase_change is None:
        return
    wanted = "phase" if o.reset_on_phase_change else "never"
    _require(o.momentum_reset in (wanted, "phase"), "optim.reset_on_phase_change", o.reset_on_phase_change,
             f"contradicts optim.momentum_reset={o.momentum_reset}; drop the deprecated key and set "
             "optim.momentum_reset=phase|mini_epoch|never")
    o.momentum_reset, o.reset_on_phase_change = wanted, None


def _non_finite(node, prefix: str = "") -> str | None:
    """The first float setting that is NaN or infinite (``optim.lr=inf`` parses as a float), or None."""
    for f in dataclasses.fields(node):
        value, key = getattr(node, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            found = _non_finite(value, key + ".")
        elif isinstance(value, list):
            found = None
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    found = _non_finite(item, f"{key}[{i}].")
                elif isinstance(item, float) and not math.isfinite(item):
                    found = f"{key}[{i}]"
                if found:
                    break
        else:
            found = key if isinstance(value, float) and not math.isfinite(value) else None
        if found:
            return found
    return None


SCHEME_SWITCHES = {(False, False): "baseline", (True, False): "dbsl", (False, True): "cpl", (True, True): "hybrid"}


def validate(cfg: Config) -> Config:
    """Check ranges and consistency; raise ConfigError naming the key and the fix."""
    _migrate(cfg)
    bad = _non_finite(cfg)
    if bad is not None:
        raise ConfigError(f"{bad}: not a finite number (nan or inf); give a number")
    for key, allowed in CHOICES.items():
        value = _get(cfg, key)
        _require(value in allowed, key, value, f"must be one of {', '.join(allowed)}")
    sc = cfg.scheme
    named = SCHEME_SWITCHES[(sc.dual_batch, sc.cyclic)]
    _require(sc.name == named, "scheme.name", sc.name,
             f"the switches dual_batch={str(sc.dual_batch).lower()}, cyclic={str(sc.cyclic).lower()} make the scheme "
             f"{named}, and the records and the report go by the name; choose a scheme with scheme={named} (or "
             "scheme=baseline|dbsl|cpl|hybrid), which sets its name and switches together")
    _require(cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda"), "device", cfg.device,
             "must be auto, cpu, cuda or cuda:N")
    n = cfg.ps.num_workers
    _require(n >= 1, "ps.num_workers", n, "needs at least one worker (the paper uses 4)")
    _require(0 <= cfg.dbsl.num_small <= n, "dbsl.num_small", cfg.dbsl.num_small,
             f"n_S must lie in 0..ps.num_workers={n}; lower dbsl.num_small or raise ps.num_workers")
    k = cfg.dbsl.extra_time_ratio
    _require(math.isfinite(k) and k >= 1.0, "dbsl.extra_time_ratio", k,
             "k must be >= 1 (an epoch may cost k times the baseline's; the paper uses 1.05 and 1.1)")
    _require(cfg.ps.staleness >= 0, "ps.staleness", cfg.ps.staleness, "must be >= 0")
    o = cfg.optim
    _require(o.lr > 0, "optim.lr", o.lr, "must be > 0")
    _require(0 <= o.momentum < 1, "optim.momentum", o.momentum, "must lie in [0, 1)")
    _require(0 < o.lr_gamma <= 1, "optim.lr_gamma", o.lr_gamma, "must lie in (0, 1]")
    for key in ("kernel_l2", "decoupled_weight_decay", "weight_decay", "warmup_epochs", "warmup_start_lr"):
        _require(getattr(o, key) >= 0, f"optim.{key}", getattr(o, key), "must be >= 0")
    s = cfg.schedule
    _require(s.epochs >= 1, "schedule.epochs", s.epochs, "must be >= 1")
    _require(list(o.lr_milestones) == sorted(set(o.lr_milestones)) and all(0 < m < s.epochs for m in o.lr_milestones),
             "optim.lr_milestones", list(o.lr_milestones),
             f"must be strictly increasing epochs inside (0, schedule.epochs={s.epochs})")
    _require(len(s.resolutions) >= 1 and all(r >= 4 for r in s.resolutions), "schedule.resolutions",
             list(s.resolutions), "needs at least one resolution >= 4 px")
    _require(list(s.resolutions) == sorted(s.resolutions), "schedule.resolutions", list(s.resolutions),
             "must go from low to high (CPL steps resolution up inside every stage)")
    _require(len(s.dropouts) == len(s.resolutions), "schedule.dropouts", list(s.dropouts),
             f"needs one dropout per resolution ({len(s.resolutions)} resolutions)")
    _require(all(0 <= p < 1 for p in s.dropouts), "schedule.dropouts", list(s.dropouts), "each must lie in [0, 1)")
    if s.batch_large is not None:
        _require(len(s.batch_large) == len(s.resolutions) and all(bl >= 1 for bl in s.batch_large),
                 "schedule.batch_large", list(s.batch_large),
                 f"needs one positive B_L per resolution ({len(s.resolutions)}), or null for the hardware profile's")
    if s.cycle_ends:
        ends = list(s.cycle_ends)
        _require(ends == sorted(set(ends)) and ends[-1] == s.epochs and ends[0] > 0, "schedule.cycle_ends", ends,
                 f"must be strictly increasing epochs ending at schedule.epochs={s.epochs}")
        stage_ends = list(o.lr_milestones) + [s.epochs]
        _require(all(m in ends for m in stage_ends), "schedule.cycle_ends", ends,
                 f"must contain every LR stage end {stage_ends} (CPL sub-stages nest inside LR stages)")
        per_stage = [sum(1 for e in ends if lo < e <= hi) for lo, hi in zip([0] + stage_ends[:-1], stage_ends)]
        _require(all(c % len(s.resolutions) == 0 for c in per_stage) or not cfg.scheme.cyclic, "schedule.cycle_ends",
                 ends, f"each LR stage needs a multiple of {len(s.resolutions)} sub-stages (one per resolution)")
    t = cfg.train
    _require(t.eval_every >= 1, "train.eval_every", t.eval_every, "must be >= 1 (evaluate every m commits)")
    _require(0 <= t.eval_final_epochs <= s.epochs, "train.eval_final_epochs", t.eval_final_epochs,
             f"must lie in 0..schedule.epochs={s.epochs} (test every commit of the last E epochs; 0: none)")
    _require(t.eval_batch_size >= 1, "train.eval_batch_size", t.eval_batch_size, "must be >= 1")
    _require(t.threads >= 0, "train.threads", t.threads, "must be >= 0 (0 keeps torch's default)")
    d = cfg.dataset
    for key in ("num_train", "num_test"):
        _require(getattr(d, key) >= 0, f"dataset.{key}", getattr(d, key), "must be >= 0 (0 means all)")
    _require(d.num_classes >= 2, "dataset.num_classes", d.num_classes, "must be >= 2")
    _require(d.channels in (1, 3), "dataset.channels", d.channels, "must be 1 or 3")
    _require(d.synthetic_train >= 1 and d.synthetic_test >= 1, "dataset.synthetic_train", d.synthetic_train,
             "synthetic sizes must be >= 1")
    _require(cfg.model.width >= 1, "model.width", cfg.model.width, "must be >= 1 (64 is the standard ResNet-18)")
    _require(0 <= cfg.model.bn_momentum < 1, "model.bn_momentum", cfg.model.bn_momentum,
             "must lie in [0, 1) (Keras convention: 0.9 journal model, 0.99 COMPSAC model; PyTorch's is 1 - this)")
    _require(cfg.model.bn_eps > 0, "model.bn_eps", cfg.model.bn_eps, "must be > 0")
    h = cfg.hardware
    _require(len(h.resolutions) >= 1, "hardware.resolutions", [], "the hardware profile lists no resolution")
    for i, p in enumerate(h.resolutions):
        if h.kind == "linear":
            _require(p.a >= 0 and p.b >= 0 and p.a + p.b > 0, f"hardware.resolutions[{i}].a", (p.a, p.b),
                     "the linear time model needs a >= 0 and b >= 0, not both 0 (recalibrate or use kind=table)")
        else:
            _require(len(p.batch_sizes) >= 2 and len(p.batch_sizes) == len(p.batch_times),
                     f"hardware.resolutions[{i}].batch_sizes", list(p.batch_sizes),
                     "a table time model needs >= 2 batch sizes with one time each")
    _require(cfg.executor.jitter >= 0, "executor.jitter", cfg.executor.jitter, "must be >= 0")
    _require(cfg.executor.timeout > 0, "executor.timeout", cfg.executor.timeout, "must be > 0 seconds")
    _require(cfg.checkpoint_every >= 0, "checkpoint_every", cfg.checkpoint_every, "must be >= 0")
    _require(cfg.checkpoint_minutes >= 0, "checkpoint_minutes", cfg.checkpoint_minutes, "must be >= 0 (0: off)")
    for key in ("results_dir", "output_dir"):
        _require(bool(getattr(cfg, key).strip()), key, getattr(cfg, key),
                 "empty (an unset shell variable?); give a folder, e.g. results_dir=results")
    return cfg


def unknown_keys(node: DictConfig, prefix: str = "") -> List[str]:
    """Keys of a composed config that its schema does not have (``+foo=1`` adds one: Hydra accepts it, nothing
    would read it)."""
    schema = OmegaConf.get_type(node)
    if not dataclasses.is_dataclass(schema):
        return []  # a free-form mapping
    fields = {f.name for f in dataclasses.fields(schema)}
    found = []
    for key in node.keys():
        if key not in fields:
            found.append(f"{prefix}{key}")
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            found += unknown_keys(child, f"{prefix}{key}.")
    return found


def repeated_override_warning(overrides) -> str | None:
    """The warning for a key given twice on one command line (``seed=1 seed=2``): Hydra keeps the last one, which
    dbsl says instead of letting it pass silently; None when every key is given once."""
    key = repeated_key(overrides)
    if key is None:
        return None
    given = [o for o in overrides if "=" in o and not o.startswith("-") and o.split("=", 1)[0].lstrip("+~") == key]
    return (f"warning: {key} given more than once ({' '.join(given)}); the last one, {given[-1]}, is used (a sweep "
            f"over values is {key}=a,b with -m)")


def config_from_yaml(path) -> Config:
    """A run's resolved config.yaml (its record) as a :class:`Config`."""
    merged = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(path))
    return OmegaConf.to_object(merged)


def to_config(cfg: DictConfig | Config) -> Config:
    """Turn a composed DictConfig into a validated :class:`Config` object."""
    if isinstance(cfg, Config):
        return validate(cfg)
    if unknown := unknown_keys(cfg):
        raise ConfigError(f"{unknown[0]}: no such setting (added with +{unknown[0]}=...?); dbsl would ignore it. "
                          "Drop it, or see the keys with: python -m dbsl.run --cfg job")
    obj = OmegaConf.to_object(cfg)
    if not isinstance(obj, Config):  # composed without the schema
        obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), cfg))
    return validate(obj)
