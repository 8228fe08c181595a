"""What the benchmarks share: picking a size, the dataset, in-memory batches, models, trainers, the result record."""
from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import torch

from dbsl.config import DatasetConfig, ModelConfig, OptimConfig
from dbsl.models import ResNet18, build_model
from dbsl.local_training import LocalTrainer

from .timing import decided

if TYPE_CHECKING:
    from dbsl.data import DataSource

ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = ROOT / "data"  # where Fashion-MNIST gets unpacked (git-ignored, as for `just demo`)
CPU = torch.device("cpu")
TIMING_LR = 0.01  # small enough that a few hundred steps on random labels stay finite
NO_DECAY = dict(kernel_l2=0.0, decoupled_weight_decay=0.0, weight_decay=0.0)


def pick(sizes: Dict[str, dict], size: str) -> dict:
    """The parameters of ``size`` (full | quick | tiny) from a benchmark's SIZES."""
    if size not in sizes:
        raise ValueError(f"size={size!r}: must be one of {', '.join(sizes)}")
    return sizes[size]


# -- data ---------------------------------------------------------------------------------------------------
# dbsl.data is imported where it is used: it pulls in torchvision (seconds), which subprocesses timing only the
# model (thread_policy) need not pay for
def fashion_mnist_available() -> bool:
    from dbsl.data.sources import fashion_mnist_dir

    folder = fashion_mnist_dir()
    return os.path.isfile(os.path.join(folder, "train-images-idx3-ubyte.gz"))


def image_source(kind: str, synthetic_train: int = 2048, synthetic_test: int = 256, num_train: int = 0,
                 num_test: int = 0) -> DataSource:
    """``kind='auto'``: Fashion-MNIST when the Debian files exist, else a synthetic stand-in of the same shape
    (28 px grey, 10 classes); ``kind='synthetic'`` always the stand-in."""
    if kind == "auto" and fashion_mnist_available():
        cfg = DatasetConfig(name="fashion_mnist", root=str(DATA_ROOT), num_train=num_train, num_test=num_test)
    elif kind in ("auto", "synthetic"):
        cfg = DatasetConfig(name="synthetic", num_classes=10, channels=1, resolution=28,
                            synthetic_train=synthetic_train, synthetic_test=synthetic_test)
    else:
        raise ValueError(f"dataset kind {kind!r}: must be auto or synthetic")
    from dbsl.data import load_dataset

    return load_dataset(cfg, seed=0)


def dataset_overrides(kind: str) -> List[str]:
    """Hydra overrides selecting the same data as :func:`image_source` (for runs through ``dbsl.one_run``)."""
    if kind == "auto" and fashion_mnist_available():
        return ["dataset=fashion_mnist", f"dataset.root={DATA_ROOT}"]
    return ["dataset=synthetic", "dataset.channels=1", "dataset.resolution=28", "dataset.num_classes=10"]


def random_batches(count: int, batch: int, resolution: int, channels: int = 3, classes: int = 10,
                   seed: int = 0) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """``count`` normalised-looking float batches already in memory (the 'data costs nothing' case)."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(batch, channels, resolution, resolution, generator=g),
             torch.randint(0, classes, (batch,), generator=g)) for _ in range(count)]


# -- the study ------------------------------------------------------------------------------------------------
STUDY = ["experiment=fmnist_study"]  # the CPU study (issue 13) whose run length and shapes decide what pays


def study(scheme: str, overrides: Sequence[str] = tuple(STUDY)):
    """(config, plan, the overrides as text) of the study preset (or ``overrides``) for ``scheme``."""
    from dbsl.compose import compose_config
    from dbsl.plan import build_plan, dataset_size

    cfg = compose_config([*overrides, f"scheme={scheme}"])
    return cfg, build_plan(cfg, dataset_size(cfg)), " ".join(overrides)


# -- models and trainers ------------------------------------------------------------------------------------
def new_model(width: int, classes: int = 10, channels: int = 3, dropout: float = 0.2, seed: int = 0) -> ResNet18:
    """ResNet-18 (CIFAR stem) of ``width``; equal seeds give equal weights, so two sides start alike."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig(width=width), classes, channels)
    model.set_dropout(dropout)
    return model


def new_trainer(model: torch.nn.Module, channels_last: bool = True, **optim: Any) -> LocalTrainer:
    """dbsl's LocalTrainer on the CPU (``channels_last``: train.channels_last, default on as in dbsl); ``optim``
    overrides OptimConfig (default: the paper's double decay)."""
    return LocalTrainer(model, replace(OptimConfig(lr=TIMING_LR), **optim), CPU, channels_last=channels_last)


def threads() -> int:
    return torch.get_num_threads()


# -- results ------------------------------------------------------------------------------------------------
def rounded(value: Any, digits: int = 4) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{digits}g}")
    return value


def rounded_all(value: Any, digits: int = 4) -> Any:
    """:func:`rounded`, also inside lists (intervals, ranges)."""
    return [rounded(v, digits) for v in value] if isinstance(value, (list, tuple)) else rounded(value, digits)


def result(name: str, title: str, target: str, columns: Sequence[Tuple[str, str]], rows: List[dict],
           headline: Optional[dict] = None, notes: Sequence[str] = (), tables: Sequence[dict] = (),
           **extra: Any) -> dict:
    """A benchmark's outcome: a table (``columns`` = [(key, header)]) and a headline ratio with its target.

    ``headline`` = {"label", "value", "target" (a number or None), "higher_is_better"}, optionally "interval" (a
    95 % interval of the value, see timing.Comparison), "clock" and "rounds". ``met`` (the value is on the target's
    good side) and ``decided`` (the whole interval is on one side of the target) are derived. ``tables``: more
    tables, each {"title", "columns", "rows"}.
    """
    headline = dict(headline or {})
    if "met" in headline:  # a benchmark that judged its own headline (e.g. a value of "never")
        pass
    elif headline.get("target") is not None and headline.get("value") is not None:
        value, bound = headline["value"], headline["target"]
        headline["met"] = value >= bound if headline.get("higher_is_better", True) else value <= bound
        headline["decided"] = decided(headline.get("interval"), bound)
    else:
        headline["met"] = None
    return {"name": name, "title": title, "target": target, "columns": [list(c) for c in columns],
            "rows": [{k: rounded_all(v) for k, v in row.items()} for row in rows],
            "headline": {k: rounded_all(v) for k, v in headline.items()}, "notes": list(notes), "threads": threads(),
            "tables": [{"title": t["title"], "columns": [list(c) for c in t["columns"]],
                        "rows": [{k: rounded_all(v) for k, v in row.items()} for row in t["rows"]]} for t in tables],
            **extra}
