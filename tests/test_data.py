"""Tests of dbsl.data: dataset files written here in their real on-disk formats, read back through torchvision via
load_dataset, and the batched augmentation / pipeline."""
from __future__ import annotations

import gzip
import math
import os
import pickle
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dbsl.config import DatasetConfig
from dbsl.data import DataError, PadCropAugment, PaperAugment, Pipeline, ShiftAugment, load_dataset
from dbsl.data.augment import affine_grid
from dbsl.data.sources import FASHION_MNIST_ENV

CPU = torch.device("cpu")


# ------------------------------------------------------------------------------------------------ file writers
def _dump(path, obj):
    # The originals are Python-2 pickles: their keys load as str under encoding='latin1' (as torchvision reads them)
    # and as b'data' etc. under encoding='bytes'; protocol-2 str keys load identically.
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _cifar_batch(rng, n, classes, label_key):
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, classes, size=n)]
    entry = {"batch_label": "batch", label_key: labels, "data": data,
             "filenames": [f"img_{i}.png" for i in range(n)]}
    if label_key == "fine_labels":
        entry["coarse_labels"] = [v // 5 for v in labels]
    return entry


def write_cifar100(root, n_train=40, n_test=12, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    train, test = _cifar_batch(rng, n_train, 100, "fine_labels"), _cifar_batch(rng, n_test, 100, "fine_labels")
    _dump(folder / "train", train)
    _dump(folder / "test", test)
    _dump(folder / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                            "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    return train, test


def write_cifar10(root, per_batch=6, n_test=5, seed=1):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = [_cifar_batch(rng, per_batch, 10, "labels") for _ in range(5)]
    for i, batch in enumerate(batches, 1):
        _dump(folder / f"data_batch_{i}", batch)
    test = _cifar_batch(rng, n_test, 10, "labels")
    _dump(folder / "test_batch", test)
    _dump(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)], "num_cases_per_batch": per_batch,
                                    "num_vis": 3072})
    return batches, test


def _as_nchw(data):
    return torch.from_numpy(data).view(-1, 3, 32, 32)  # rows are 1024 R, then G, then B values, row-major


# ------------------------------------------------------------------------------------------------ CIFAR
def test_cifar100_round_trip(tmp_path):
    train, test = write_cifar100(tmp_path)
    src = load_dataset(DatasetConfig(name="cifar100", root=str(tmp_path)))
    assert (src.num_classes, src.channels, src.native_resolution) == (100, 3, 32)
    assert src.train.images.dtype == torch.uint8 and src.train.images.shape == (40, 3, 32, 32)
    assert torch.equal(src.train.images, _as_nchw(train["data"]))
    assert torch.equal(src.test.images, _as_nchw(test["data"]))
    assert src.train.labels.tolist() == train["fine_labels"]  # fine, not coarse labels
    assert src.train.images[7, 2, 5, 9] == train["data"][7, 2 * 1024 + 5 * 32 + 9]  # a known pixel: blue, y=5, x=9
    assert src.classes[3] == "fine3"
    mean = train["data"].reshape(40, 3, 1024).transpose(1, 0, 2).reshape(3, -1).mean(1) / 255
    assert np.allclose(src.mean, mean)


def test_cifar100_missing_and_corrupt(tmp_path):
    with pytest.raises(DataError, match="dataset.root") as err:
        load_dataset(DatasetConfig(name="cifar100", root=str(tmp_path)))
    assert "cifar-100-python" in str(err.value) and "dataset.download=true" in str(err.value)
    write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").write_bytes(b"this is not a pickle")
    with pytest.raises(DataError, match=r"cifar-100-python[/\\]test"):
        load_dataset(DatasetConfig(name="cifar100", root=str(tmp_path)))


def test_cifar100_wrong_shape_names_file(tmp_path):
    write_cifar100(tmp_path)
    bad = {"data": np.zeros((4, 3000), np.uint8), "fine_labels": [0] * 4, "coarse_labels": [0] * 4}
    _dump(tmp_path / "cifar-100-python" / "train", bad)
    with pytest.raises(DataError, match=r"cifar-100-python[/\\]train\b.*3072"):
        load_dataset(DatasetConfig(name="cifar100", root=str(tmp_path)))


def test_cifar10_round_trip_subset_and_errors(tmp_path):
    batches, test = write_cifar10(tmp_path)
    src = load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path)))
    assert src.num_classes == 10 and len(src.train) == 30 and len(src.test) == 5
    assert torch.equal(src.train.images, _as_nchw(np.concatenate([b["data"] for b in batches])))  # batch 1..5 order
    assert src.train.labels.tolist() == sum((b["labels"] for b in batches), [])
    assert torch.equal(src.test.images, _as_nchw(test["data"]))
    sub = load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path), num_train=8, mean=[0.5], std=[0.25]), seed=3)
    again = load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path), num_train=8), seed=3)
    assert len(sub.train) == 8 and torch.equal(sub.train.images, again.train.images)
    assert sub.mean == (0.5, 0.5, 0.5) and sub.std == (0.25, 0.25, 0.25)
    rows = [i for i in range(30) if any(torch.equal(src.train.images[i], im) for im in sub.train.images)]
    assert len(rows) == 8  # a subset of real rows
    with pytest.raises(DataError, match="num_train=31"):
        load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path), num_train=31))
    meta = tmp_path / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(meta.read_bytes()[:20])  # truncated
    with pytest.raises(DataError, match=r"batches\.meta"):
        load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path)))
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3.*dataset.root"):
        load_dataset(DatasetConfig(name="cifar10", root=str(tmp_path)))


# ------------------------------------------------------------------------------------------------ Fashion-MNIST
def _write_idx(path, array):
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_debian_layout(tmp_path, monkeypatch):
    debian, root = tmp_path / "usr-share-datasets-fashion-mnist", tmp_path / "data"
    debian.mkdir()
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)),
              "train-labels-idx1-ubyte": np.arange(20) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)),
              "t10k-labels-idx1-ubyte": np.array([9, 8, 7, 0, 1, 2])}
    for name, array in arrays.items():
        _write_idx(debian / f"{name}.gz", array)
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist.*dataset.download=true"):
        load_dataset(DatasetConfig(name="fashion_mnist", root=str(root)))
    monkeypatch.setenv(FASHION_MNIST_ENV, str(debian))
    src = load_dataset(DatasetConfig(name="fashion_mnist", root=str(root)))
    assert (src.num_classes, src.channels, src.native_resolution) == (10, 1, 28)
    assert src.train.images.shape == (20, 1, 28, 28)
    assert torch.equal(src.train.images[:, 0], torch.from_numpy(arrays["train-images-idx3-ubyte"].astype(np.uint8)))
    assert torch.equal(src.test.images[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"].astype(np.uint8)))
    assert src.test.labels.tolist() == [9, 8, 7, 0, 1, 2]
    raw = root / "FashionMNIST" / "raw"
    assert sorted(os.listdir(raw)) == sorted(arrays)  # gunzipped once, no temporary files left
    monkeypatch.setenv(FASHION_MNIST_ENV, str(tmp_path / "nowhere"))  # now served from the extracted raw files
    assert torch.equal(load_dataset(DatasetConfig(name="fashion_mnist", root=str(root))).train.labels,
                       src.train.labels)


# ------------------------------------------------------------------------------------------------ ImageNet layout
def _write_png(path, size, colour):
    from PIL import Image

    Image.new("RGB", size, colour).save(path)


def test_image_folder_through_pipeline(tmp_path):
    colours = {"ant": (255, 0, 0), "bee": (0, 255, 0), "cat": (0, 0, 255)}
    sizes = [(37, 23), (50, 61), (29, 29)]
    for split, count in (("train", 3), ("val", 2)):
        for name, colour in colours.items():
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(count):
                _write_png(tmp_path / split / name / f"{i}.png", sizes[i], colour)
    src = load_dataset(DatasetConfig(name="imagenet", root=str(tmp_path)))
    assert (src.num_classes, src.channels, src.native_resolution, src.classes) == (3, 3, 224, ["ant", "bee", "cat"])
    assert len(src.train) == 9 and len(src.test) == 6 and not src.train.in_memory
    assert src.mean == (0.485, 0.456, 0.406) and src.std == (0.229, 0.224, 0.225)
    pipe = Pipeline(src, "paper", CPU)
    order = torch.tensor([8, 0, 4, 2, 6, 1, 3])
    batches = list(pipe.train_batches(order, 3, 24, torch.Generator().manual_seed(0)))
    assert len(batches) == 2 and batches[0][0].shape == (3, 3, 24, 24)
    assert torch.equal(torch.cat([y for _, y in batches]), src.train.labels[order[:6]])
    mean, std = torch.tensor(src.mean).view(3, 1, 1), torch.tensor(src.std).view(3, 1, 1)
    for x, y in batches:  # uniformly coloured images stay uniform under flip/rotation/zoom with reflect fill
        rgb = torch.tensor([colours[src.classes[int(label)]] for label in y]).view(-1, 3, 1, 1)
        expected = (rgb / 255 - mean) / std
        assert torch.allclose(x, expected.expand_as(x), atol=1e-4)
    test = list(pipe.test_batches(24, 4))
    assert [len(y) for _, y in test] == [4, 2] and test[0][0].shape == (4, 3, 24, 24)
    assert torch.equal(torch.cat([y for _, y in test]), torch.tensor([0, 0, 1, 1, 2, 2]))


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match=r"train.*dataset.root"):
        load_dataset(DatasetConfig(name="imagenet", root=str(tmp_path)))
    (tmp_path / "train" / "ant").mkdir(parents=True)
    (tmp_path / "val" / "ant").mkdir(parents=True)
    _write_png(tmp_path / "val" / "ant" / "0.png", (8, 8), (1, 2, 3))
    with pytest.raises(DataError, match=r"train"):  # a class folder without images
        load_dataset(DatasetConfig(name="imagenet", root=str(tmp_path)))


# ------------------------------------------------------------------------------------------------ synthetic
def _synthetic(seed, **kw):
    cfg = DatasetConfig(name="synthetic", synthetic_train=600, synthetic_test=300, **kw)
    return load_dataset(cfg, seed=seed)


def test_synthetic_deterministic_and_seeded():
    a, b, c = _synthetic(0), _synthetic(0), _synthetic(1)
    assert a.train.images.shape == (600, 3, 32, 32) and a.train.images.dtype == torch.uint8
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.train.images, c.train.images)
    assert torch.bincount(a.train.labels, minlength=10).tolist() == [60] * 10
    gray = _synthetic(0, channels=1, resolution=20, num_classes=4)
    assert gray.train.images.shape == (600, 1, 20, 20) and gray.num_classes == 4 and len(gray.mean) == 1


def test_synthetic_is_learnable():
    src = _synthetic(0)
    x, y = src.train.images.flatten(1).float(), src.train.labels
    means = torch.stack([x[y == k].mean(0) for k in range(10)])
    guess = torch.cdist(src.test.images.flatten(1).float(), means).argmin(1)
    assert (guess == src.test.labels).float().mean() > 0.5  # chance is 0.1


# ------------------------------------------------------------------------------------------------ augmentation
@pytest.fixture(scope="module")
def source():
    return _synthetic(0)


def _normalised(src, images):
    mean, std = torch.tensor(src.mean).view(1, -1, 1, 1), torch.tensor(src.std).view(1, -1, 1, 1)
    return (images.float() / 255 - mean) / std


@pytest.mark.parametrize("augment", ["paper", "shift", "padcrop", "none"])
@pytest.mark.parametrize("resolution", [16, 32])
def test_train_batches_shape_order_and_determinism(source, augment, resolution):
    pipe = Pipeline(source, augment, CPU)
    order = torch.randperm(len(source.train))[:100]

    def run(seed):
        return list(pipe.train_batches(order, 32, resolution, torch.Generator().manual_seed(seed)))

    first, again, other = run(5), run(5), run(6)
    assert len(first) == 3  # drop_last
    for (x, y), (x2, _) in zip(first, again):
        assert x.shape == (32, 3, resolution, resolution) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert torch.equal(x, x2)
    assert torch.equal(torch.cat([y for _, y in first]), source.train.labels[order[:96]])
    same = all(torch.equal(a[0], b[0]) for a, b in zip(first, other))
    assert same == (augment == "none")  # random augmentations depend on the generator, 'none' does not


def test_none_at_native_resolution_is_exact(source):
    pipe = Pipeline(source, "none", CPU)
    (x, y), = list(pipe.train_batches(torch.arange(8), 8, 32, torch.Generator()))
    assert torch.allclose(x, _normalised(source, source.train.images[:8]), atol=1e-6, rtol=0)


def test_flip_only_equals_torch_flip(source):
    pipe = Pipeline(source, PaperAugment(rotation=0.0, zoom=0.0), CPU)
    (x, _), = list(pipe.train_batches(torch.arange(64), 64, 32, torch.Generator().manual_seed(0)))
    plain = _normalised(source, source.train.images[:64])
    flipped = [torch.allclose(a, p.flip(-1), atol=1e-5) for a, p in zip(x, plain)]
    unflipped = [torch.allclose(a, p, atol=1e-5) for a, p in zip(x, plain)]
    assert all(f or u for f, u in zip(flipped, unflipped)) and 10 < sum(flipped) < 54


def test_paper_ranges_follow_keras_layers():
    theta = PaperAugment().theta(20000, torch.Generator().manual_seed(0), CPU)
    sign = torch.sign(theta[:, 0, 0] * theta[:, 1, 1] - theta[:, 0, 1] * theta[:, 1, 0])  # det < 0: flipped
    angle = torch.atan2(theta[:, 1, 0], theta[:, 1, 1])
    zoom = theta[:, 1].norm(dim=1)
    assert abs((sign < 0).float().mean() - 0.5) < 0.02
    assert angle.abs().max() <= 0.05 * 2 * math.pi + 1e-6 and angle.abs().max() > 0.099 * math.pi  # ±18°
    assert zoom.min() >= 0.75 - 1e-6 and zoom.max() <= 1.25 + 1e-6 and zoom.min() < 0.76 and zoom.max() > 1.24
    assert torch.allclose(theta[:, :, 2], torch.zeros(20000, 2))  # no translation in the journal pipeline


@pytest.mark.parametrize("resolution", [7, 24])
def test_affine_grid_matches_torch(resolution):
    theta = PaperAugment().theta(5, torch.Generator().manual_seed(2), CPU)
    expected = F.affine_grid(theta, [5, 3, resolution, resolution], align_corners=False)
    assert torch.allclose(affine_grid(theta, resolution), expected, atol=1e-6)


def test_paper_reflects_instead_of_padding(source):
    x = 100 + torch.arange(16.0).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    out = PaperAugment()(x, 4, torch.Generator().manual_seed(1))
    assert out.min() >= 100 - 1e-4 and out.max() <= 115 + 1e-4  # no zero/constant fill: only image values
    zoomed_out = PaperAugment(flip=0, rotation=0, zoom=0.25)(torch.full((64, 1, 8, 8), 200.0), 8,
                                                             torch.Generator())
    assert torch.allclose(zoomed_out, torch.full_like(zoomed_out, 200.0))


def test_padcrop_is_a_shifted_zero_padded_crop(source):
    images = source.train.images[:16].float()
    out = PadCropAugment()(images, 32, torch.Generator().manual_seed(0))
    padded = F.pad(images, (4, 4, 4, 4))
    for a, image in zip(out, padded):
        candidates = [c for dy in range(9) for dx in range(9) for c in (image[:, dy:dy + 32, dx:dx + 32],)]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.allclose(a, c, atol=1e-3) for c in candidates)
    assert out.shape == (16, 3, 32, 32) and PadCropAugment()(images, 20, torch.Generator()).shape == (16, 3, 20, 20)


def test_shift_is_continuous_with_nearest_edge_fill():
    # a ramp image x[i, j] = j: a horizontal shift by s px (bilinear) gives j + s, the nearest-edge fill clamps it to
    # [0, 31]; the COMPSAC code's width_shift_range=0.1 allows |s| <= 0.1 * 32 = 3.2 px
    ramp = torch.arange(32.0).view(1, 1, 1, 32).expand(400, 1, 32, 32)
    out = ShiftAugment(flip=0.0)(ramp, 32, torch.Generator().manual_seed(0))
    shifts = out[:, 0, 16, 16] - 16
    assert shifts.abs().max() <= 3.2 + 1e-4 and shifts.abs().max() > 3.0  # the whole range is used
    expected = (torch.arange(32.0).view(1, 32) + shifts.view(-1, 1)).clamp(0, 31)
    assert torch.allclose(out[:, 0, 5], expected, atol=1e-4)  # edges repeat the nearest pixel, never zero
    fractional = (shifts - shifts.round()).abs() > 0.01
    assert fractional.float().mean() > 0.9  # continuous shifts, not whole pixels (padcrop's)
    rows = torch.arange(32.0).view(1, 1, 32, 1).expand(400, 1, 32, 32)  # the vertical shift, the same way
    down = ShiftAugment(flip=0.0)(rows, 32, torch.Generator().manual_seed(1))[:, 0, :, 7] - torch.arange(32.0)
    assert down[:, 16].abs().max() <= 3.2 + 1e-4 and down[:, 16].abs().max() > 3.0
    flipped = ShiftAugment()(ramp, 32, torch.Generator().manual_seed(2))
    decreasing = flipped[:, 0, 16, 20] < flipped[:, 0, 16, 10]
    assert 150 < int(decreasing.sum()) < 250  # a horizontal flip in about half of the images


def test_partial_last_batch(source):
    pipe = Pipeline(source, "shift", CPU)
    order = torch.randperm(len(source.train), generator=torch.Generator().manual_seed(0))[:100]
    batches = list(pipe.train_batches(order, 32, 32, torch.Generator().manual_seed(0), partial_last=True))
    assert [len(y) for _, y in batches] == [32, 32, 32, 4]  # 100 = 3 * 32 + 4
    assert torch.equal(torch.cat([y for _, y in batches]), source.train.labels[order])


def test_test_batches_cached_per_resolution(source):
    pipe = Pipeline(source, "paper", CPU)
    first = list(pipe.test_batches(24, 128))
    second = list(pipe.test_batches(24, 128))
    assert [len(y) for _, y in first] == [128, 128, 44]
    assert first[0][0].data_ptr() == second[0][0].data_ptr()  # served from the cache, not recomputed
    native = list(pipe.test_batches(32, 300))[0][0]
    assert native.data_ptr() != first[0][0].data_ptr()
    assert torch.allclose(native, _normalised(source, source.test.images), atol=1e-6, rtol=0)  # no augmentation
    resized = F.interpolate(source.test.images[:128].float(), size=(24, 24), mode="bilinear", align_corners=False)
    assert torch.allclose(first[0][0], _normalised(source, resized), atol=1e-5)


def test_bad_names_raise_data_error(source):
    with pytest.raises(DataError, match="dataset.name"):
        load_dataset(DatasetConfig(name="mnist"))
    from dbsl.config import ConfigError

    with pytest.raises(ConfigError, match="dataset.augment='cutout': must be one of paper, shift, padcrop, none"):
        Pipeline(source, "cutout", CPU)  # a config value: the config's own error
    with pytest.raises(DataError, match="dataset.std"):
        load_dataset(DatasetConfig(name="synthetic", synthetic_train=4, synthetic_test=4, std=[0.2, 0.0, 0.1]))
    assert issubclass(DataError, ValueError)
