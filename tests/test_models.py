"""ResNet-18 family: parameter counts, stems, runtime dropout."""
from __future__ import annotations

import torch
import torchvision

from dbsl.models import ResNet18, kernel_parameters


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_width64_cifar_is_the_standard_11_2m_network():
    assert count(ResNet18(100, 3, 64, "cifar")) == 11_220_132


def test_imagenet_stem_matches_torchvisions_resnet18():
    assert count(ResNet18(1000, 3, 64, "imagenet")) == count(torchvision.models.resnet18())
    out = ResNet18(1000, 3, 64, "imagenet").eval()(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 1000)


def test_narrow_width_and_grey_input():
    model = ResNet18(10, 1, 16)
    assert 650_000 < count(model) < 750_000
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert model(torch.zeros(2, 1, 20, 20)).shape == (2, 10)  # any resolution: GAP head


def test_dropout_changes_without_rebuilding():
    torch.manual_seed(0)
    model = ResNet18(10, 3, 4).train()
    x = torch.randn(4, 3, 16, 16)
    params = [id(p) for p in model.parameters()]
    model.set_dropout(0.0)
    a, b = model(x), model(x)
    model.set_dropout(0.9)
    c = model(x)
    assert [id(p) for p in model.parameters()] == params
    assert model.dropout.p == 0.9
    assert not torch.allclose(a.detach(), c.detach())
    assert torch.allclose(a, b)


def test_kernel_parameters_are_conv_and_dense_weights():
    model = ResNet18(10, 3, 8)
    kernels = kernel_parameters(model)
    assert len(kernels) == 1 + 16 + 3 + 1  # stem, 8 blocks x 2 convs, 3 projection shortcuts, classifier
    assert all(k.dim() in (2, 4) for k in kernels)
