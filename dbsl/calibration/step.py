"""The training step being calibrated: the run's model in a :class:`~dbsl.local_training.LocalTrainer`, fed by the run's
:class:`~dbsl.data.Pipeline` (sampling, augmentation, resize), exactly as a worker's mini-epoch trains.

It answers three questions per (resolution, batch size): train n batches (the caller times it), how many bytes
a training step needs, and (CUDA only) whether the batch fits at all.
"""
from __future__ import annotations

import gc
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config
from ..data import DataSource, Pipeline
from ..models import build_model
from ..ps.worker import derive_seed, mini_epoch_indices
from ..local_training import LocalTrainer
from ..machine import cpu_model

# The LR of the timed steps: 0 keeps the weights at their initial values (no divergence, no NaN slow paths)
# while SGD, momentum and weight decay still do all their work.
TIMING_LR = 0.0


def step_bytes(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Bytes of one training step counted tensor by tensor (paper 5.3's sum p_l + B * sum a_l): parameters with
    their gradients and momentum, the input batch, and every tensor autograd keeps for the backward pass.

    Used on the CPU, where the process's resident memory is blurred by the allocator's caching.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    del loss
    state = 3 * sum(p.numel() * p.element_size() for p in model.parameters())
    return state + x.nelement() * x.element_size() + sum(saved.values())


class TrainingStep:
    """Trains batches of the configured model and data on ``device`` with the run's LocalTrainer settings."""

    def __init__(self, cfg: Config, source: DataSource, device: torch.device):
        self.cfg, self.source, self.device = cfg, source, device
        torch.manual_seed(derive_seed(cfg.seed, "calibrate"))
        self.model = build_model(cfg.model, source.num_classes, source.channels).to(device)
        self.trainer = LocalTrainer(self.model, cfg.optim, device, cfg.train.amp, cfg.train.channels_last)
        self.pipeline = Pipeline(source, cfg.dataset.augment, device)
        self.generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "calibrate", "data"))
        s = cfg.schedule
        self.dropouts = dict(zip(s.resolutions, s.dropouts))
        self.default_dropout = s.dropouts[-1]

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def probes_out_of_memory(self) -> bool:
        return self.is_cuda

    def train_steps(self, resolution: int, batch_size: int, steps: int) -> None:
        """``steps`` training batches of ``batch_size`` at ``resolution``, sampled and augmented as a worker does."""
        self.model.set_dropout(self.dropouts.get(resolution, self.default_dropout))
        indices = mini_epoch_indices("random_subset", self.generator, len(self.source.train), steps * batch_size)
        batches = self.pipeline.train_batches(indices, batch_size, resolution, self.generator)
        self.trainer.train(batches, TIMING_LR)

    def memory(self, resolution: int, batch_size: int) -> int:
        """Bytes a training step needs: CUDA's peak allocation, or the CPU tensor count of :func:`step_bytes`."""
        if self.is_cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.train_steps(resolution, batch_size, 1)
            return torch.cuda.max_memory_allocated(self.device)
        self.model.train()
        indices = torch.arange(batch_size) % len(self.source.train)
        x, y = next(iter(self.pipeline.train_batches(indices, batch_size, resolution, self.generator)))
        return step_bytes(self.model, x, y)

    def fits(self, resolution: int, batch_size: int) -> Optional[bool]:
        """CUDA: does one training step at this batch size run without running out of memory (recovering if not)?
        None on the CPU, where the memory budget decides."""
        if not self.is_cuda:
            return None
        try:
            self.train_steps(resolution, batch_size, 1)
            return True
        except torch.cuda.OutOfMemoryError:
            self.trainer.optimizer.zero_grad(set_to_none=True)
            gc.collect()
            torch.cuda.empty_cache()
            return False

    def memory_budget(self) -> Optional[int]:
        """CUDA: the device's memory; None on the CPU (the caller's --memory-budget applies)."""
        if self.is_cuda:
            return torch.cuda.get_device_properties(self.device).total_memory
        return None

    def device_name(self) -> str:
        if self.is_cuda:
            return torch.cuda.get_device_name(self.device)
        return cpu_model()
