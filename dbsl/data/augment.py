"""Batched training augmentations that also resize to the current (CPL) resolution.

Each augmentation maps a batch of images (B, C, H, W) (uint8 or float, pixel units 0..255, on the target device)
to float32 (B, C, r, r) in pixel units; the pipeline normalises afterwards. Random numbers come only from the
``torch.Generator`` passed in, a fixed number per batch, so a batch is reproducible from the generator's state.
The geometric augmentations are one affine grid (:func:`affine_grid`) + ``F.grid_sample`` call whose output grid
has the target resolution: the sampling *is* the bilinear resize (half-pixel centres, no anti-aliasing, like
``tf.image.resize``).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from ..config import implementation
from .base import resize


def _uniform(batch: int, columns: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """(batch, columns) uniform [0, 1) draws from ``generator`` (on its own device), moved to ``device``."""
    u = torch.rand(batch, columns, generator=generator, device=generator.device)
    return u.to(device=device, dtype=torch.float32)


@functools.lru_cache(maxsize=32)
def _base_grid(resolution: int, device: torch.device) -> torch.Tensor:
    """(r*r, 3) rows (x, y, 1) of the output pixel centres in normalised coordinates (align_corners=False)."""
    centres = (torch.arange(resolution, dtype=torch.float32, device=device) * 2 + 1) / resolution - 1
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x, y, torch.ones_like(x)], -1).view(-1, 3)


def affine_grid(theta: torch.Tensor, resolution: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, r, r), align_corners=False)`` as one GEMM (a view, not contiguous).

    Same values; much faster on CPU than ``F.affine_grid``, whose batched matmul of tiny matrices dominated the
    augmentation's cost.
    """
    batch = theta.shape[0]
    grid = _base_grid(resolution, theta.device) @ theta.reshape(batch * 2, 3).T  # (r*r, B*2)
    return grid.view(resolution, resolution, batch, 2).permute(2, 0, 1, 3)


def _sample(x: torch.Tensor, theta: torch.Tensor, resolution: int, padding_mode: str) -> torch.Tensor:
    """Sample ``x`` on the affine grid ``theta`` (B, 2, 3) (output -> input, normalised coords) at r x r."""
    return F.grid_sample(x.float(), affine_grid(theta, resolution), mode="bilinear", padding_mode=padding_mode,
                         align_corners=False)


class Augment:
    """Base class: ``augment(x, resolution, generator) -> float32 (B, C, r, r)`` in pixel units."""

    name = "base"

    def __call__(self, x: torch.Tensor, resolution: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in vars(self).items())})"


class NoAugment(Augment):
    """Resize only (bilinear)."""

    name = "none"

    def __call__(self, x, resolution, generator):
        return resize(x, resolution)


class PaperAugment(Augment):
    """The journal code's Keras layers: ``RandomFlip('horizontal')``, ``RandomRotation(0.05)``, ``RandomZoom(0.25)``.

    Per image: a horizontal flip with probability ``flip``; a rotation by an angle uniform in
    ±``rotation``·2π rad (Keras' factor is a fraction of a full turn, 0.05 -> ±18°); a zoom factor
    1 + U(−``zoom``, +``zoom``), equal on both axes (Keras: positive = zoom out). Pixels from outside the image
    are filled by reflection (Keras ``fill_mode='reflect'``). Flip, rotation, zoom and the resize to the stage
    resolution are composed into one affine map and applied in a single ``grid_sample``. Unlike the authors, who
    first resize CIFAR to r (``keras.layers.Resizing``) and then augment, the image is interpolated once.
    """

    name = "paper"

    def __init__(self, flip: float = 0.5, rotation: float = 0.05, zoom: float = 0.25):
        self.flip, self.rotation, self.zoom = flip, rotation, zoom

    def theta(self, batch: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """(B, 2, 3) maps output -> input coordinates: input = Flip · Rotation · Zoom · output (Keras order)."""
        u = _uniform(batch, 3, generator, device)
        sign = torch.where(u[:, 0] < self.flip, -1.0, 1.0)
        angle = (2 * u[:, 1] - 1) * (self.rotation * 2 * math.pi)
        scale = 1 + (2 * u[:, 2] - 1) * self.zoom
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        zero = torch.zeros_like(cos)
        return torch.stack([torch.stack([sign * cos, -sign * sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)

    def __call__(self, x, resolution, generator):
        return _sample(x, self.theta(x.shape[0], generator, x.device), resolution, "reflection")


class PadCropAugment(Augment):
    """Standard CIFAR augmentation (not in the paper): zero-pad ``pad`` px, random crop at the native size,
    horizontal flip with probability ``flip``, then resize to r (one ``grid_sample``; offsets are whole pixels,
    so at the native resolution the crop copies pixels exactly)."""

    name = "padcrop"

    def __init__(self, pad: int = 4, flip: float = 0.5):
        self.pad, self.flip = pad, flip

    def theta(self, batch: int, size: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """(B, 2, 3): flip and a whole-pixel shift in [-pad, pad] of a square ``size`` x ``size`` image."""
        u = _uniform(batch, 3, generator, device)
        sign = torch.where(u[:, 0] < self.flip, -1.0, 1.0)
        shift = (u[:, 1:] * (2 * self.pad + 1)).floor().clamp_max(2 * self.pad) - self.pad
        one, zero = torch.ones_like(sign), torch.zeros_like(sign)
        return torch.stack([torch.stack([sign, zero, 2 * shift[:, 0] / size], 1),
                            torch.stack([zero, one, 2 * shift[:, 1] / size], 1)], 1)

    def __call__(self, x, resolution, generator):
        return _sample(x, self.theta(x.shape[0], x.shape[-1], generator, x.device), resolution, "zeros")


class ShiftAugment(Augment):
    """The COMPSAC code's ``ImageDataGenerator(width_shift_range=0.1, height_shift_range=0.1, horizontal_flip=True)``:
    per image a horizontal and a vertical shift each uniform in ±``shift`` of the image size, continuous (not whole
    pixels; bilinear interpolation), pixels from outside filled with the nearest edge pixel (Keras
    ``fill_mode='nearest'``), and a horizontal flip with probability ``flip``; then resized to r (one
    ``grid_sample``)."""

    name = "shift"

    def __init__(self, shift: float = 0.1, flip: float = 0.5):
        self.shift, self.flip = shift, flip

    def theta(self, batch: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """(B, 2, 3): flip and a shift of (2u - 1)*``shift`` of the size per axis (normalised coordinates span 2)."""
        u = _uniform(batch, 3, generator, device)
        sign = torch.where(u[:, 0] < self.flip, -1.0, 1.0)
        offset = (2 * u[:, 1:] - 1) * self.shift * 2
        one, zero = torch.ones_like(sign), torch.zeros_like(sign)
        return torch.stack([torch.stack([sign, zero, offset[:, 0]], 1), torch.stack([zero, one, offset[:, 1]], 1)], 1)

    def __call__(self, x, resolution, generator):
        return _sample(x, self.theta(x.shape[0], generator, x.device), resolution, "border")


def make_augment(name: str) -> Augment:
    """The augmentation called ``name`` (``dataset.augment``; the names: config.IMPLEMENTATIONS) with the paper's /
    standard parameters."""
    return implementation("dataset.augment", name)()
