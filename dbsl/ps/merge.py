"""The server's merge rules: how a pushed model enters the global model (the formulas, in one place).

The paper (section 3.4) scales a small-batch worker's contribution by the model-update factor f but gives no
formula; the authors' two codes use two rules (paper.md 2.1). Large-batch workers always push with f = 1.
"""
from __future__ import annotations

from typing import List, Sequence

import torch

from ..config import implementation

Tensors = List[torch.Tensor]


def journal_weights(factor: float) -> tuple[float, float]:
    """The hybrid paper's code: w <- (w + f*w_i) / (1 + f)."""
    return 1.0 / (1.0 + factor), factor / (1.0 + factor)


def compsac_weights(factor: float) -> tuple[float, float]:
    """The COMPSAC 2022 code: w <- ((2 - f)*w + f*w_i) / 2."""
    return (2.0 - factor) / 2.0, factor / 2.0


def replace_weights(factor: float) -> tuple[float, float]:
    """No averaging: w <- w_i (with one worker: plain SGD, the server only holds the model)."""
    return 0.0, 1.0


def merge_weights(rule: str, factor: float) -> tuple[float, float]:
    """(weight of the global model, weight of the pushed model) for one asynchronous merge under ``ps.merge_rule``
    (the rules: config.IMPLEMENTATIONS)."""
    return implementation("ps.merge_rule", rule)(factor)


@torch.no_grad()
def merge_into(global_tensors: Tensors, pushed: Tensors, rule: str, factor: float) -> None:
    """ASP: merge one pushed model into the global model, in place."""
    keep, take = merge_weights(rule, factor)
    if (keep, take) == (0.0, 1.0):  # replace: a copy, exact (0*w + w_i would turn an inf in w into NaN)
        torch._foreach_copy_(global_tensors, list(pushed))
        return
    torch._foreach_mul_(global_tensors, keep)
    torch._foreach_add_(global_tensors, list(pushed), alpha=take)


@torch.no_grad()
def average_into(global_tensors: Tensors, pushed: Sequence[Tensors], factors: Sequence[float]) -> None:
    """BSP: the global model becomes the factor-weighted mean sum(f_i * w_i) / sum(f_i) of all workers' models."""
    total = float(sum(factors))
    torch._foreach_mul_(global_tensors, 0.0)
    for tensors, f in zip(pushed, factors):
        torch._foreach_add_(global_tensors, list(tensors), alpha=f / total)
