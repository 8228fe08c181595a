"""What dbsl knows about each named dataset before loading it: the one table a new dataset is added to (besides
its loader in :mod:`dbsl.data.sources`). ``synthetic`` takes every fact from its ``dataset.*`` keys."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class DatasetFacts:
    train_size: int  # d: the full training set, so that a plan can be made without loading the data
    test_size: int  # the test set (the time forecast's evaluation cost)
    num_classes: Optional[int]  # None: the folder's class count (ImageNet: 1000 for ILSVRC-2012)
    channels: int
    native_resolution: int  # px


DATASETS = {
    "fashion_mnist": DatasetFacts(60_000, 10_000, 10, 1, 28),
    "cifar10": DatasetFacts(50_000, 10_000, 10, 3, 32),
    "cifar100": DatasetFacts(50_000, 10_000, 100, 3, 32),
    "imagenet": DatasetFacts(1_281_167, 50_000, None, 3, 224),  # ILSVRC-2012: the 50,000 validation images
}
DATASET_NAMES = ("synthetic", *DATASETS)
