"""A small, learnable image-classification task generated in memory (for tests and CPU experiments).

Each class is a fixed random smooth (low-frequency) pattern, left-right symmetric so that the paper's horizontal
flip keeps the label meaningful. A sample is its class pattern plus a per-sample smooth nuisance pattern plus pixel
noise, stored as uint8. Everything is drawn from one ``torch.Generator`` seeded with the run's seed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import TensorImageSet

SIGNAL = 24.0  # grey levels per unit of class pattern
NUISANCE = 2.0  # per-sample smooth pattern, relative to the class pattern (sets the difficulty)
PIXEL_NOISE = 16.0  # grey levels of i.i.d. pixel noise
CHUNK = 4096  # samples generated at a time (bounds the float memory)


def smooth_patterns(n: int, channels: int, resolution: int, generator: torch.Generator) -> torch.Tensor:
    """(n, C, r, r) float patterns: 4x4 Gaussian noise upsampled bicubically, each scaled to zero mean, unit std."""
    low = min(4, resolution)
    basis = torch.eye(low * low).view(low * low, 1, low, low)  # upsampling is linear: one matmul with its basis
    upsample = F.interpolate(basis, size=(resolution, resolution), mode="bicubic", align_corners=False)
    x = torch.randn(n * channels, low * low, generator=generator) @ upsample.view(low * low, -1)
    x = x.view(n, -1)
    x = x - x.mean(dim=1, keepdim=True)
    return (x / x.std(dim=1, keepdim=True).clamp_min(1e-6)).view(n, channels, resolution, resolution)


def _samples(prototypes: torch.Tensor, n: int, generator: torch.Generator) -> TensorImageSet:
    classes, channels, resolution, _ = prototypes.shape
    labels = (torch.arange(n) % classes)[torch.randperm(n, generator=generator)]
    images = torch.empty(n, channels, resolution, resolution, dtype=torch.uint8)
    for start in range(0, n, CHUNK):
        y = labels[start:start + CHUNK]
        x = smooth_patterns(len(y), channels, resolution, generator).mul_(NUISANCE).add_(prototypes[y])
        x.mul_(SIGNAL).add_(128).add_(torch.randn(x.shape, generator=generator).mul_(PIXEL_NOISE))
        images[start:start + CHUNK] = x.round_().clamp_(0, 255).to(torch.uint8)
    return TensorImageSet(images, labels)


def make_synthetic(num_classes: int, channels: int, resolution: int, num_train: int, num_test: int,
                   seed: int) -> tuple[TensorImageSet, TensorImageSet]:
    """Deterministic (train, test) sets for ``seed``; train and test share the class patterns."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = smooth_patterns(num_classes, channels, resolution, generator)
    prototypes = (prototypes + prototypes.flip(-1)) / 2  # symmetric: a horizontal flip keeps the class
    prototypes = prototypes / prototypes.flatten(1).std(dim=1).clamp_min(1e-6).view(-1, 1, 1, 1)
    return _samples(prototypes, num_train, generator), _samples(prototypes, num_test, generator)
