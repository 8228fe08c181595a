"""ResNet-18 family: parameter counts, stems, runtime dropout."""
from __future__ import annotations

import pytest
import torch
import torchvision

from dbsl.models import ResNet18, build_model, kernel_parameters
from dbsl.models.resnet import Layers


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


def test_compsac_model_has_conv_biases_and_keras_default_batchnorm(compose):
    cfg = compose(["experiment=compsac_cifar100"])
    model = build_model(cfg.model, 100, 3)
    # 11,220,132 + one bias per conv output channel: stem 64, stage 1 4 x 64, stages 2-4 (4 convs + shortcut) x
    # 128 / 256 / 512 = 64 + 256 + 640 + 1280 + 2560 = 4800
    assert count(model) == 11_220_132 + 4_800
    assert all(m.bias is not None and not m.bias.any() for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert count(build_model(compose(["experiment=paper_cifar100"]).model, 100, 3)) == 11_220_132


@pytest.mark.parametrize("keras_momentum,eps,expected_mean,expected_var", [
    # one training batch of 0, 0, 4, 4: mean 2, unbiased variance (4 + 4 + 4 + 4) / 3 = 5.3333, from the initial
    # running (0, 1); in Keras terms running = m * running + (1 - m) * batch:
    (0.99, 1e-3, 0.02, 1.0433333),  # the COMPSAC model (Keras defaults): 0.01 * 2; 0.99 + 0.01 * 5.3333
    (0.9, 1.001e-5, 0.2, 1.4333333),  # the journal model: 0.1 * 2; 0.9 + 0.1 * 5.3333
])
def test_batchnorm_momentum_is_in_keras_terms(keras_momentum, eps, expected_mean, expected_var):
    bn = Layers(bn_momentum=keras_momentum, bn_eps=eps).bn(1).train()
    bn(torch.tensor([0.0, 0.0, 4.0, 4.0]).view(4, 1, 1, 1))
    assert bn.running_mean.item() == pytest.approx(expected_mean)
    assert bn.running_var.item() == pytest.approx(expected_var)
    assert bn.eps == eps
