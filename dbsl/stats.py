"""What a mini-epoch's training and a test of a model report: the records every layer passes on (the worker, the
server, the monitor), kept in a leaf module so that passing them on does not import the training loop."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainStats:
    loss: float
    acc: float
    samples: int
    steps: int
    seconds: float  # wall seconds of the mini-epoch's training (data pipeline included)
    cpu_seconds: float = 0.0  # this process's CPU seconds over the same stretch (all its threads)


@dataclass
class EvalStats:
    loss: float  # cross-entropy
    top1: float
    top5: float
    samples: int
    seconds: float
    l2: float = 0.0  # the model's L2 kernel term (kernel_l2_penalty): loss + l2 is Keras's (the paper's) test loss
