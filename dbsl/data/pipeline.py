"""Batches for training and evaluation: gather, augment + resize on the target device, normalise.

In-memory sets are gathered with one index op per batch (on CUDA the uint8 images live on the GPU, copied
once from pinned memory), so there is no per-sample Python work. Lazy sets (ImageNet) are decoded and resized
to r by a ``DataLoader`` with ``num_workers`` processes and pinned memory on CUDA; augmentation still runs
batched on the device, with randomness only from the caller's generator.
"""
from __future__ import annotations

from typing import Iterator, Optional, Union

import torch
from torch.utils.data import DataLoader, Dataset

from .augment import Augment, make_augment
from .base import DataSource, ImageSet, TensorImageSet, resize

Batch = tuple[torch.Tensor, torch.Tensor]


class _Resized(Dataset):
    """Items (uint8 (C, r, r), label) of a lazy image set, for a DataLoader."""

    def __init__(self, images: ImageSet, resolution: int):
        self.images, self.resolution = images, resolution

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images.images_at(torch.tensor([index]), self.resolution)[0], self.images.labels[index]


class Pipeline:
    """Training and test batches of ``source`` on ``device``, as float32 NCHW normalised by the source's mean/std.

    ``augment`` is ``dataset.augment`` (paper | padcrop | none) or an :class:`Augment` instance.
    """

    def __init__(self, source: DataSource, augment: Union[str, Augment], device: Union[str, torch.device],
                 pin_memory: Optional[bool] = None, num_workers: int = 0):
        self.source = source
        self.augment = make_augment(augment) if isinstance(augment, str) else augment
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        self.pin_memory = (cuda if pin_memory is None else pin_memory) and torch.cuda.is_available()
        self.num_workers = num_workers
        std = torch.tensor(source.std, dtype=torch.float32).view(1, -1, 1, 1)
        mean = torch.tensor(source.mean, dtype=torch.float32).view(1, -1, 1, 1)
        # (x/255 - mean)/std == x*scale - shift, applied in place on the (B, C, r, r) output
        self._scale = (1 / (255 * std)).to(self.device)
        self._shift = (mean / std).to(self.device)
        self._test_cache: dict[int, Batch] = {}

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """float32 pixel values (0..255) -> ``(x/255 - mean)/std``, in place."""
        return x.mul_(self._scale).sub_(self._shift)

    def _raw_batches(self, images: ImageSet, indices: torch.Tensor, batch_size: int, resolution: int
                     ) -> Iterator[Batch]:
        """(uint8 images, int64 labels) on the device, in index order; lazy sets arrive already at r x r."""
        chunks = indices.split(batch_size)
        if isinstance(images, TensorImageSet):
            data, labels = images.on(self.device)
            for chunk in chunks:
                chunk = chunk.to(data.device, non_blocking=True)
                yield data.index_select(0, chunk), labels.index_select(0, chunk)
            return
        loader = DataLoader(_Resized(images, resolution), batch_sampler=[c.tolist() for c in chunks],
                            num_workers=self.num_workers, pin_memory=self.pin_memory)
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def train_batches(self, indices: torch.Tensor, batch_size: int, resolution: int,
                      generator: torch.Generator, partial_last: bool = False) -> Iterator[Batch]:
        """``len(indices) // batch_size`` batches (drop_last) of training images in the given index order:
        augmented and resized to ``resolution`` (randomness only from ``generator``), normalised, on the device.
        ``partial_last``: also the remaining ``len(indices) % batch_size`` images as a last, smaller batch."""
        indices = torch.as_tensor(indices, dtype=torch.long).flatten()
        if not partial_last:
            indices = indices[: len(indices) // batch_size * batch_size]
        for x, y in self._raw_batches(self.source.train, indices, batch_size, resolution):
            yield self.normalise(self.augment(x, resolution, generator)), y

    def test_batches(self, resolution: int, batch_size: int) -> Iterator[Batch]:
        """The whole test set, bilinearly resized to ``resolution`` (no augmentation) and normalised.

        In-memory sets are prepared once per resolution and kept on the device (batches are views of it).
        """
        images = self.source.test
        everything = torch.arange(len(images))
        if not isinstance(images, TensorImageSet):
            for x, y in self._raw_batches(images, everything, batch_size, resolution):
                yield self.normalise(resize(x, resolution)), y
            return
        if resolution not in self._test_cache:
            parts = [(self.normalise(resize(x, resolution)), y)
                     for x, y in self._raw_batches(images, everything, 1024, resolution)]
            self._test_cache[resolution] = (torch.cat([x for x, _ in parts]), torch.cat([y for _, y in parts]))
        x, y = self._test_cache[resolution]
        for start in range(0, len(y), batch_size):
            yield x[start:start + batch_size], y[start:start + batch_size]
