"""Testing the global model: the merged weights, the full test set, the resolution of the pushing worker's phase."""
from __future__ import annotations

import dataclasses

import torch

from ..data import Pipeline
from ..local_training import EvalStats, channels_last_for, evaluate, kernel_l2_penalty


class Evaluator:
    """Tests a global model on the full test set at the current phase's resolution; with ``kernel_l2`` the result
    also carries the model's L2 term, which Keras's evaluate adds to the test loss the paper reports."""

    def __init__(self, model: torch.nn.Module, pipeline: Pipeline, device: torch.device, batch_size: int,
                 amp: bool = False, kernel_l2: float = 0.0, channels_last: bool = True):
        self.model, self.pipeline, self.device, self.batch_size, self.amp = model, pipeline, device, batch_size, amp
        self.kernel_l2 = kernel_l2
        self.channels_last = channels_last_for(model, channels_last, device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def __call__(self, state: dict, resolution: int) -> EvalStats:
        for name, tensor in self.model.state_dict().items():
            tensor.copy_(state[name])
        stats = evaluate(self.model, self.pipeline.test_batches(resolution, self.batch_size), self.device, self.amp,
                         self.channels_last)
        return dataclasses.replace(stats, l2=kernel_l2_penalty(self.model, self.kernel_l2))
