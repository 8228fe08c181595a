"""ResNet-18 as the authors built it in Keras (paper.md section 6), in PyTorch.

Basic blocks [2, 2, 2, 2] of widths w, 2w, 4w, 8w (w = 64: the standard 11.2 M parameters), post-activation,
1x1 projection shortcuts; CIFAR stem (3x3 stride-1 conv, no max-pool) or ImageNet stem (7x7/2 conv + 3x3/2 max-pool);
global average pooling, then Dropout whose rate CPL changes between mini-epochs, then the classifier.
BatchNorm as Keras: momentum 0.9 (PyTorch momentum 0.1), eps 1.001e-5. Kernels he_normal (truncated, as Keras).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import ModelConfig

BN_EPS = 1.001e-5
BN_MOMENTUM = 0.1  # Keras momentum 0.9: running = 0.9*running + 0.1*batch


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, cout, 3, stride), _bn(cout)
        self.conv2, self.bn2 = _conv(cout, cout, 3, 1), _bn(cout)
        self.shortcut = (nn.Sequential(_conv(cin, cout, 1, stride), _bn(cout))
                         if stride != 1 or cin != cout else nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64, stem: str = "cifar",
                 dropout: float = 0.0):
        super().__init__()
        if stem == "cifar":
            self.stem = nn.Sequential(_conv(in_channels, width, 3, 1), _bn(width), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(_conv(in_channels, width, 7, 2), _bn(width), nn.ReLU(inplace=True),
                                      nn.MaxPool2d(3, stride=2, padding=1))
        layers, cin = [], width
        for i, cout in enumerate((width, 2 * width, 4 * width, 8 * width)):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
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
    return ResNet18(num_classes, in_channels, cfg.width, cfg.stem)


def kernel_parameters(model: nn.Module) -> list[torch.Tensor]:
    """Conv and dense kernels: the variables the authors' L2(1e-4) kernel regulariser applies to."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
