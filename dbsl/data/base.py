"""Containers shared by every dataset source: image sets, the data source record and the error type."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import UserError


class DataError(UserError):
    """A dataset that cannot be loaded; the message names the path or key and the fix."""


def resize(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear resize of an NCHW batch to ``resolution`` x ``resolution`` as float32 in pixel units (0..255).

    Half-pixel centres and no anti-aliasing, i.e. ``tf.image.resize(..., 'bilinear')`` as used by the authors'
    ``keras.layers.Resizing`` (CIFAR) and ``image_dataset_from_directory(image_size=(r, r))`` (ImageNet). The aspect
    ratio is not preserved. At the input's own size it returns the image unchanged.
    """
    if x.shape[-2:] == (resolution, resolution):
        return x.to(torch.float32, copy=True)  # always a new tensor: callers normalise in place
    return F.interpolate(x.float(), size=(resolution, resolution), mode="bilinear", align_corners=False,
                         antialias=False)


class ImageSet(ABC):
    """One split of a dataset: all labels in memory, images fetched by index as uint8 NCHW tensors.

    ``in_memory`` sets hold every image as one uint8 tensor (:class:`TensorImageSet`); the pipeline gathers and
    augments whole batches with tensor ops. Lazy sets (:class:`FolderImageSet`) decode files on demand and are
    read through a ``torch.utils.data.DataLoader`` with worker processes.
    """

    in_memory: bool = True
    labels: torch.Tensor  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)

    @abstractmethod
    def images_at(self, indices: torch.Tensor, resolution: Optional[int] = None) -> torch.Tensor:
        """uint8 (B, C, r, r) images at ``indices``, bilinearly resized to ``resolution`` (None: stored size)."""

    @abstractmethod
    def subset(self, indices: torch.Tensor) -> "ImageSet":
        """The images at ``indices`` (in that order) as a new set."""


class TensorImageSet(ImageSet):
    """Images held in memory as one uint8 (N, C, H, W) tensor."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(labels):
            raise DataError(f"expected uint8 (N,C,H,W) images with one label each, got {images.dtype} "
                            f"{tuple(images.shape)} and {len(labels)} labels")
        self.images = images.contiguous()
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self._device_copies: dict = {}

    def images_at(self, indices, resolution=None):
        x = self.images[torch.as_tensor(indices, dtype=torch.long)]
        if resolution is None or x.shape[-1] == resolution == x.shape[-2]:
            return x
        return resize(x, resolution).round_().clamp_(0, 255).to(torch.uint8)

    def subset(self, indices):
        indices = torch.as_tensor(indices, dtype=torch.long)
        return TensorImageSet(self.images[indices], self.labels[indices])

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) on ``device``; one copy per device, shared by every pipeline using this set."""
        device = torch.device(device)
        if device.type == "cpu":
            return self.images, self.labels
        if device not in self._device_copies:  # pinned host memory + asynchronous copy (CUDA)
            self._device_copies[device] = (self.images.pin_memory().to(device, non_blocking=True),
                                           self.labels.pin_memory().to(device, non_blocking=True))
        return self._device_copies[device]


def _read_image(path: str) -> torch.Tensor:
    """Decode one image file to uint8 (3, H, W) RGB."""
    with Image.open(path) as img:
        array = np.asarray(img.convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


class FolderImageSet(ImageSet):
    """Files listed as (path, label), decoded lazily and resized to (r, r) on every read (ImageNet)."""

    in_memory = False

    def __init__(self, samples: Sequence[tuple[str, int]]):
        self.paths = [path for path, _ in samples]
        self.labels = torch.tensor([label for _, label in samples], dtype=torch.long)

    def load(self, index: int, resolution: int) -> torch.Tensor:
        """uint8 (3, r, r): the decoded file, bilinearly resized with aspect distortion as the authors do."""
        x = resize(_read_image(self.paths[index])[None], resolution)
        return x.round_().clamp_(0, 255).to(torch.uint8)[0]

    def images_at(self, indices, resolution=None):
        resolution = resolution or 224  # ImageNet's native resolution
        return torch.stack([self.load(int(i), resolution) for i in torch.as_tensor(indices).tolist()])

    def subset(self, indices):
        indices = torch.as_tensor(indices, dtype=torch.long).tolist()
        return FolderImageSet([(self.paths[i], int(self.labels[i])) for i in indices])


@dataclass
class DataSource:
    """A loaded dataset: both splits plus what the model and the normalisation need."""

    name: str
    num_classes: int
    channels: int
    native_resolution: int
    mean: tuple[float, ...]  # per channel, in [0, 1] units
    std: tuple[float, ...]
    train: ImageSet
    test: ImageSet
    classes: list[str] = field(default_factory=list)


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 (N, C, H, W) images, in [0, 1] units (exact, from
    per-channel histograms of the 256 grey levels)."""
    channels = images.shape[1]
    counts = torch.zeros(channels, 256, dtype=torch.float64)
    for part in images.split(chunk):
        for c in range(channels):
            counts[c] += torch.bincount(part[:, c].reshape(-1), minlength=256).double()
    levels = torch.arange(256, dtype=torch.float64) / 255
    total = counts.sum(1)
    mean = (counts * levels).sum(1) / total
    std = ((counts * levels.square()).sum(1) / total - mean.square()).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())
