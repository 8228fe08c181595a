"""ResNet-18 as the authors built it in Keras (paper.md section 6), in PyTorch.

Basic blocks [2, 2, 2, 2] of widths w, 2w, 4w, 8w (w = 64: the standard 11.2 M parameters), post-activation,
1x1 projection shortcuts; CIFAR stem (3x3 stride-1 conv, no max-pool) or ImageNet stem (7x7/2 conv + 3x3/2 max-pool);
global average pooling, then Dropout whose rate CPL changes between mini-epochs, then the classifier.
Kernels he_normal (truncated, as Keras). BatchNorm momentum is given in Keras terms (``running = m*running +
(1 - m)*batch``), so PyTorch's ``BatchNorm2d(momentum=1 - m)``: the journal model's m = 0.9 is PyTorch's 0.1, the
COMPSAC model's Keras default m = 0.99 is PyTorch's 0.01. The journal model: m = 0.9, eps 1.001e-5, convolutions
without bias; the COMPSAC model (paper.md section 6): m = 0.99, eps 1e-3, convolutions with a (zero-initialised) bias.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # annotations only: a model needs no config module to be built
    from ..config import ModelConfig


BN_EPS = 1.001e-5  # the journal model's (Keras momentum 0.9, eps 1.001e-5)
BN_MOMENTUM = 0.9  # Keras convention


@dataclass(frozen=True)
class Layers:
    """How convolutions and BatchNorms are built: ``model.bn_momentum`` (Keras terms), ``bn_eps``, ``conv_bias``."""

    bn_momentum: float = BN_MOMENTUM
    bn_eps: float = BN_EPS
    conv_bias: bool = False

    def bn(self, channels: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(channels, eps=self.bn_eps, momentum=1.0 - self.bn_momentum)  # Keras m -> PyTorch 1-m

    def conv(self, cin: int, cout: int, kernel: int, stride: int) -> nn.Conv2d:
        return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=self.conv_bias)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, layers: Layers = Layers()):
        super().__init__()
        self.conv1, self.bn1 = layers.conv(cin, cout, 3, stride), layers.bn(cout)
        self.conv2, self.bn2 = layers.conv(cout, cout, 3, 1), layers.bn(cout)
        self.shortcut = (nn.Sequential(layers.conv(cin, cout, 1, stride), layers.bn(cout))
                         if stride != 1 or cin != cout else nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64, stem: str = "cifar",
                 dropout: float = 0.0, layers: Layers = Layers()):
        super().__init__()
        if stem == "cifar":
            self.stem = nn.Sequential(layers.conv(in_channels, width, 3, 1), layers.bn(width), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(layers.conv(in_channels, width, 7, 2), layers.bn(width), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, stride=2, padding=1))
        blocks, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            blocks += [BasicBlock(cin, cout, stride, layers), BasicBlock(cout, cout, 1, layers)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # Keras he_normal: truncated normal, std sqrt(2/fan_in)
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                std = math.sqrt(2.0 / fan_in) / 0.87962566103423978  # truncation at 2 s.d. shrinks the s.d.
                nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
                if m.bias is not None:  # Keras Conv2D bias: zeros
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):  # Keras Dense default: glorot_uniform, zero bias
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def set_dropout(self, rate: float) -> None:
        """CPL raises dropout with resolution; the rate changes without rebuilding the model."""
        self.dropout.p = float(rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(self.dropout(torch.flatten(self.pool(x), 1)))


def build_model(cfg: ModelConfig, num_classes: int, in_channels: int) -> ResNet18:
    return ResNet18(num_classes, in_channels, cfg.width, cfg.stem,
                    layers=Layers(cfg.bn_momentum, cfg.bn_eps, cfg.conv_bias))


def kernel_parameters(model: nn.Module) -> list[torch.Tensor]:
    """Conv and dense kernels: the variables the authors' L2(1e-4) kernel regulariser applies to."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
