"""Datasets and the input pipeline of dbsl.

``load_dataset(cfg.dataset, seed)`` gives a :class:`DataSource` (synthetic, Fashion-MNIST, CIFAR-10/100 or
ImageNet; their sizes, classes, channels and native resolutions are declared once in :mod:`.facts`); :class:`Pipeline` turns it into augmented, resized, normalised batches on the training device, with the
journal code's augmentation (flip, rotation 0.05, zoom 0.25, reflect fill) as ``augment='paper'``.
"""
import importlib

# name -> the module that defines it; imported on first use, so that the torch-free dataset facts (.facts) are
# read by the config and the plan without loading torch and torchvision
_HOMES = {
    **dict.fromkeys(("Augment", "NoAugment", "PadCropAugment", "PaperAugment", "ShiftAugment",
                     "make_augment"), "augment"),
    **dict.fromkeys(("DataError", "DataSource", "FolderImageSet", "ImageSet", "TensorImageSet", "channel_stats",
                     "resize"), "base"),
    "Pipeline": "pipeline",
    **dict.fromkeys(("FASHION_MNIST_DIR", "FASHION_MNIST_ENV", "IMAGENET_MEAN", "IMAGENET_STD", "load_dataset"),
                    "sources"),
    **dict.fromkeys(("DATASETS", "DATASET_NAMES", "DatasetFacts"), "facts"),
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
