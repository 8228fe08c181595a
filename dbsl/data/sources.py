"""Dataset sources: ``load_dataset(cfg.dataset, seed)`` turns a :class:`~dbsl.config.DatasetConfig` into a
:class:`DataSource`. File formats are read by torchvision; every failure becomes a :class:`DataError` that names
the path and the fix (``dataset.root=...``, ``dataset.download=true``, or the Debian package)."""
from __future__ import annotations

import gzip
import logging
import os
import pickle
import shutil
from typing import TYPE_CHECKING, Callable, Optional

import torch
from torchvision import datasets
from torchvision.datasets.utils import download_and_extract_archive

from . import fashion_mnist
from .base import DataError, DataSource, FolderImageSet, ImageSet, TensorImageSet, channel_stats
from .facts import DATASET_NAMES, DATASETS
from .synthetic import make_synthetic
from .verify import bad_images

log = logging.getLogger("dbsl")

if TYPE_CHECKING:
    from dbsl.config import DatasetConfig

# Debian package ``dataset-fashion-mnist`` (installed by root, or fetched by `just data` into the user's cache); the
# environment variable overrides both (tests point it elsewhere). See dbsl.data.fashion_mnist.
FASHION_MNIST_DIR = fashion_mnist.SYSTEM_DIR
FASHION_MNIST_ENV = fashion_mnist.ENV
FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _labels_ok(labels: torch.Tensor, classes: int) -> bool:
    return len(labels) > 0 and 0 <= int(labels.min()) and int(labels.max()) < classes


# ------------------------------------------------------------------------------------------------ Fashion-MNIST
def fashion_mnist_dir() -> str:
    """Where the gzipped IDX files of the Debian package are (``$DBSL_FASHION_MNIST_DIR`` if set, else the first
    folder with the package's files, checked; else the system folder)."""
    folder, _ = fashion_mnist.locate()
    return str(folder) if folder is not None else os.environ.get(FASHION_MNIST_ENV, FASHION_MNIST_DIR)


def _gunzip(source: str, target: str) -> None:
    """Decompress ``source`` to ``target`` atomically (temporary file, then rename)."""
    temporary = f"{target}.tmp{os.getpid()}"
    try:
        with gzip.open(source, "rb") as fin, open(temporary, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        os.replace(temporary, target)
    except (OSError, EOFError) as err:
        raise DataError(f"cannot decompress {source} into {target}: {err}") from err
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _fetch(fetch: Callable[[], object], failed: str) -> None:
    """Download a dataset's missing files with ``fetch``; a failure is one DataError line (``failed``, whose
    ``{err}`` names the error, says what to do instead)."""
    try:
        fetch()
    except Exception as err:  # noqa: BLE001 - network and archive errors
        raise DataError(failed.replace("{err}", str(err))) from err


def _splits(read: Callable[[bool], tuple]) -> tuple[ImageSet, ImageSet, list[str]]:
    """The train and test splits from ``read(train)`` -> (images, labels, class names), each checked by ``read``."""
    (train_x, train_y, classes), (test_x, test_y, _) = read(True), read(False)
    return TensorImageSet(train_x, train_y), TensorImageSet(test_x, test_y), list(classes)


def _fashion_mnist(cfg: DatasetConfig) -> tuple[ImageSet, ImageSet, list[str]]:
    raw = os.path.join(cfg.root, "FashionMNIST", "raw")
    missing = [name for name in FASHION_MNIST_FILES if not os.path.isfile(os.path.join(raw, name))]
    debian, problem = fashion_mnist.locate([f"{name}.gz" for name in missing]) if missing else (None, None)
    if debian is not None:
        os.makedirs(raw, exist_ok=True)
        for name in missing:  # torchvision reads only uncompressed files in <root>/FashionMNIST/raw
            _gunzip(os.path.join(debian, f"{name}.gz"), os.path.join(raw, name))
        missing = []
    if problem and not cfg.download:
        raise DataError(f"Fashion-MNIST: {problem}; fetch it again with `just data` (as root: `apt-get install "
                        f"--reinstall dataset-fashion-mnist`)")
    if missing and not cfg.download:
        raise DataError(
            f"Fashion-MNIST not found: {', '.join(missing)} missing in {raw} and no gzipped IDX files in "
            f"{fashion_mnist.searched()}. Get them with `just data` (as root it runs `apt-get install "
            f"dataset-fashion-mnist`; without root it fetches the package into {fashion_mnist.user_dir()}), set "
            f"${FASHION_MNIST_ENV} to their folder, put the unzipped IDX files into {raw} (see dataset.root), or set "
            f"dataset.download=true.")
    if missing:
        _fetch(lambda: datasets.FashionMNIST(cfg.root, train=True, download=True),
               f"downloading Fashion-MNIST into {raw} failed ({{err}}); install the Debian package instead "
               "(`apt-get install dataset-fashion-mnist`)")

    def read(train: bool):
        try:
            ds = datasets.FashionMNIST(cfg.root, train=train)
        except Exception as err:  # noqa: BLE001 - torchvision raises assorted types for bad files
            raise DataError(f"cannot read Fashion-MNIST from {raw} ({type(err).__name__}: {err}); delete the "
                            f"folder to re-extract it, or set dataset.download=true") from err
        images, labels = ds.data, torch.as_tensor(ds.targets, dtype=torch.long)
        if images.dim() != 3 or len(images) != len(labels) or not _labels_ok(labels, DATASETS["fashion_mnist"].num_classes):
            raise DataError(f"corrupt Fashion-MNIST files in {raw}: images {tuple(images.shape)}, "
                            f"{len(labels)} labels; delete the folder to re-extract it")
        return images[:, None], labels, ds.classes

    return _splits(read)


# ------------------------------------------------------------------------------------------------ CIFAR
class _CIFAR10(datasets.CIFAR10):
    """torchvision's CIFAR-10 reader, with the MD5 checks reduced to existence checks.

    Shapes and labels are validated by :func:`_cifar` instead, so a corrupt file is still reported (by name), and
    subsets or re-pickled copies in the original format are accepted.
    """

    def _check_integrity(self) -> bool:
        return all(os.path.isfile(os.path.join(self.root, self.base_folder, name))
                   for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}


class _CIFAR100(_CIFAR10, datasets.CIFAR100):
    """torchvision's CIFAR-100 reader (fine labels), without MD5 checks (see :class:`_CIFAR10`)."""


def _cifar_file_problem(path: str, label_key: Optional[str], names_key: Optional[str]) -> Optional[str]:
    """Why the CIFAR pickle ``path`` is unusable, or None if it looks fine."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except Exception as err:  # noqa: BLE001 - unpickling garbage raises many types
        return f"not a readable pickle ({type(err).__name__}: {err})"
    if not isinstance(entry, dict):
        return f"holds a {type(entry).__name__}, not a dict"
    if names_key is not None:
        return None if isinstance(entry.get(names_key), list) else f"has no list {names_key!r}"
    data, labels = entry.get("data"), entry.get(label_key)
    if getattr(data, "ndim", 0) != 2 or data.shape[1] != 3 * 32 * 32 or str(data.dtype) != "uint8":
        return f"'data' must be a (N, 3072) uint8 array, got {getattr(data, 'dtype', type(data).__name__)} " \
               f"{getattr(data, 'shape', '')}"
    if not isinstance(labels, list) or len(labels) != len(data):
        return f"needs a list {label_key!r} with one label per image ({len(data)} images)"
    return None


def _cifar(cfg: DatasetConfig, classes: int) -> tuple[ImageSet, ImageSet, list[str]]:
    reader = _CIFAR100 if classes == 100 else _CIFAR10
    folder = os.path.join(cfg.root, reader.base_folder)
    files = [name for name, _ in reader.train_list + reader.test_list] + [reader.meta["filename"]]
    title = f"CIFAR-{classes}"
    missing = [name for name in files if not os.path.isfile(os.path.join(folder, name))]
    if missing and not cfg.download:
        archive = reader.filename
        raise DataError(
            f"{title} not found: {', '.join(missing)} missing in {folder}. Extract {archive} so that "
            f"{reader.base_folder}/ lies inside dataset.root (now {cfg.root!r}); set dataset.root=/path/to/parent "
            f"or dataset.download=true to fetch it.")
    if missing:
        _fetch(lambda: download_and_extract_archive(reader.url, cfg.root, filename=reader.filename,
                                                    md5=reader.tgz_md5),
               f"downloading {title} from {reader.url} into {cfg.root} failed ({{err}}); put "
               f"{reader.base_folder}/ into dataset.root by hand")

    def read(train: bool):
        try:
            ds = reader(cfg.root, train=train)
            images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
            labels = torch.as_tensor(ds.targets, dtype=torch.long)
            ok = len(images) == len(labels) and tuple(images.shape[1:]) == (3, 32, 32)
            ok = ok and _labels_ok(labels, classes)
            error: Optional[Exception] = None if ok else ValueError("wrong shapes or labels")
        except Exception as err:  # noqa: BLE001 - bad pickles raise many types; diagnosed below
            error = err
        if error is not None:
            label_key = "fine_labels" if classes == 100 else "labels"
            for name in files:
                path = os.path.join(folder, name)
                problem = _cifar_file_problem(path, None if name == reader.meta["filename"] else label_key,
                                              reader.meta["key"] if name == reader.meta["filename"] else None)
                if problem:
                    raise DataError(f"corrupt {title} file {path}: {problem}. Re-extract {reader.filename} "
                                    f"or set dataset.download=true") from error
            raise DataError(f"cannot read {title} from {folder} ({type(error).__name__}: {error}); labels must "
                            f"lie in 0..{classes - 1}. Re-extract {reader.filename}") from error
        return images, labels, ds.classes

    return _splits(read)


# ------------------------------------------------------------------------------------------------ ImageNet
def _image_folder(path: str) -> datasets.ImageFolder:
    if not os.path.isdir(path):
        raise DataError(f"ImageNet folder {path} not found: dataset.root must contain train/<class>/*.JPEG and "
                        f"val/<class>/*.JPEG (set dataset.root=/path/to/imagenet)")
    try:
        return datasets.ImageFolder(path)
    except (FileNotFoundError, RuntimeError) as err:
        raise DataError(f"unusable ImageNet folder {path}: {err}") from err


def _imagenet(cfg: DatasetConfig) -> tuple[ImageSet, ImageSet, list[str]]:
    train = _image_folder(os.path.join(cfg.root, "train"))
    val = _image_folder(os.path.join(cfg.root, "val"))
    if val.classes != train.classes:
        extra = sorted(set(val.classes) ^ set(train.classes))[:5]
        raise DataError(f"{os.path.join(cfg.root, 'val')} and {os.path.join(cfg.root, 'train')} hold different "
                        f"class folders (e.g. {extra}); val/ must be sorted into the same class folders")
    samples = [_decodable(cfg, split, folder.samples) for split, folder in (("train", train), ("val", val))]
    return FolderImageSet(samples[0]), FolderImageSet(samples[1]), list(train.classes)


def _decodable(cfg: DatasetConfig, split: str, samples: list) -> list:
    """``samples`` after checking that every image decodes: an error naming the bad files, or without them
    (``dataset.skip_bad_images=true``)."""
    folder = os.path.join(cfg.root, split)
    bad = bad_images(folder, [path for path, _ in samples])
    if not bad:
        return samples
    shown = "; ".join(f"{path} ({why})" for path, why in sorted(bad.items())[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    if not cfg.skip_bad_images:
        raise DataError(f"{len(bad)} of {len(samples)} images in {folder} cannot be decoded: {shown}{more}. Replace or "
                        "delete them, or set dataset.skip_bad_images=true to train without them")
    log.warning("dataset.skip_bad_images: leaving out %d of %d images in %s that cannot be decoded: %s%s", len(bad),
                len(samples), folder, shown, more)
    kept = [s for s in samples if s[0] not in bad]
    if not kept:
        raise DataError(f"none of the {len(samples)} images in {folder} can be decoded: {shown}{more}")
    return kept


# ------------------------------------------------------------------------------------------------ entry point
def _subset(images: ImageSet, count: int, key: str, name: str, seed: int) -> ImageSet:
    """A fixed random subset of ``count`` images (0: all), seeded; kept in the original order."""
    if count == 0 or count == len(images):
        return images
    if count > len(images):
        raise DataError(f"dataset.{key}={count} exceeds the {len(images)} images of {name}; lower it or use 0 (all)")
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:count]
    return images.subset(chosen.sort().values)


def _channel_values(value, channels: int, key: str) -> Optional[tuple[float, ...]]:
    if value is None:
        return None
    value = tuple(float(v) for v in value)
    if len(value) == 1:
        value = value * channels
    if len(value) != channels:
        raise DataError(f"dataset.{key}={list(value)}: needs 1 or {channels} values (one per channel)")
    return value


LOADERS = {"fashion_mnist": _fashion_mnist, "cifar10": lambda cfg: _cifar(cfg, DATASETS["cifar10"].num_classes),
           "cifar100": lambda cfg: _cifar(cfg, DATASETS["cifar100"].num_classes),
           "imagenet": _imagenet}  # one per entry of facts.DATASETS


def load_dataset(cfg: DatasetConfig, seed: int = 0) -> DataSource:
    """Load (or generate) the dataset ``cfg.name``; raises :class:`DataError` with the path and the fix."""
    name = cfg.name
    if name == "synthetic":
        train, test = make_synthetic(cfg.num_classes, cfg.channels, cfg.resolution, cfg.synthetic_train,
                                     cfg.synthetic_test, seed)
        num_classes, channels, native, classes = cfg.num_classes, cfg.channels, cfg.resolution, []
    elif name in DATASETS:
        facts = DATASETS[name]
        train, test, classes = LOADERS[name](cfg)
        num_classes, channels, native = facts.num_classes or len(classes), facts.channels, facts.native_resolution
    else:
        raise DataError(f"dataset.name={name!r}: must be one of {', '.join(DATASET_NAMES)}")
    train = _subset(train, cfg.num_train, "num_train", name, seed * 2 + 1)
    test = _subset(test, cfg.num_test, "num_test", name, seed * 2 + 2)
    mean = _channel_values(cfg.mean, channels, "mean")
    std = _channel_values(cfg.std, channels, "std")
    if std is not None and min(std) <= 0:
        raise DataError(f"dataset.std={list(std)}: every value must be > 0")
    if mean is None or std is None:
        if isinstance(train, TensorImageSet):
            own_mean, own_std = channel_stats(train.images)
        else:
            own_mean, own_std = IMAGENET_MEAN, IMAGENET_STD
        mean, std = mean or own_mean, std or own_std
    return DataSource(name=name, num_classes=num_classes, channels=channels, native_resolution=native,
                      mean=mean, std=std, train=train, test=test, classes=classes)
