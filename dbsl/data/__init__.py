"""Datasets and the input pipeline of dbsl.

``load_dataset(cfg.dataset, seed)`` gives a :class:`DataSource` (synthetic, Fashion-MNIST, CIFAR-10/100 or
ImageNet); :class:`Pipeline` turns it into augmented, resized, normalised batches on the training device, with the
journal code's augmentation (flip, rotation 0.05, zoom 0.25, reflect fill) as ``augment='paper'``.
"""
from .augment import AUGMENTS, Augment, NoAugment, PadCropAugment, PaperAugment, ShiftAugment, make_augment
from .base import DataError, DataSource, FolderImageSet, ImageSet, TensorImageSet, channel_stats, resize
from .pipeline import Pipeline
from .sources import FASHION_MNIST_DIR, FASHION_MNIST_ENV, IMAGENET_MEAN, IMAGENET_STD, load_dataset

__all__ = [
    "AUGMENTS", "Augment", "DataError", "DataSource", "FASHION_MNIST_DIR", "FASHION_MNIST_ENV", "FolderImageSet",
    "IMAGENET_MEAN", "IMAGENET_STD", "ImageSet", "NoAugment", "PadCropAugment", "PaperAugment", "Pipeline",
    "ShiftAugment", "TensorImageSet", "channel_stats", "load_dataset", "make_augment", "resize",
]
