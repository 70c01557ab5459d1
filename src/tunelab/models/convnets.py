"""Image classifiers sized by the data (channels, image size): the classic small Keras CNN and a DAWNBench ResNet-9."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tunelab.errors import UserError


def conv_block(c_in: int, c_out: int, batch_norm: bool = True, pool: bool = False) -> nn.Sequential:
    """3x3 conv (no bias when a norm follows), optional batch norm, ReLU, optional 2x2 max pool."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """conv 32 -> pool -> conv 64 -> pool -> dense 128 -> dropout -> classes (the Keras CIFAR-10 example).

    The dense layer reads the 64 maps of (H / 4) x (W / 4) pixels: 8 x 8 for CIFAR, 7 x 7 for Fashion-MNIST.
    """

    output_modules = ("classifier.4",)  # sized by the classes: fine-tuning starts it anew where they differ

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        batch_norm: bool = False,
        dropout: float = 0.5,
        image_size: Sequence[int] = (32, 32),
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_block(in_channels, 32, batch_norm, pool=True), conv_block(32, 64, batch_norm, pool=True)
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * (image_size[0] // 4) * (image_size[1] // 4), 128),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Residual(nn.Module):
    """x + f(x) with two conv blocks of the same width."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_block(channels, channels), conv_block(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """Prep 64 -> 128 (pool, residual) -> 256 (pool) -> 512 (pool, residual) -> global max pool -> linear.

    The DAWNBench ResNet-9 (Page, 2018), which reaches 94% on CIFAR-10 in a few dozen GPU epochs;
    `width` scales every layer, `scale` multiplies the logits as in the original.
    """

    output_modules = ("net.8",)  # the final linear layer, sized by the classes

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        width: int = 64,
        scale: float = 0.125,
        image_size: Sequence[int] = (32, 32),
    ) -> None:
        super().__init__()
        if min(image_size) < 8:  # three 2x2 pools, then the global pool
            raise UserError(f"model=resnet needs images of at least 8 x 8 pixels; the data has {image_size}")
        w = width
        self.net = nn.Sequential(
            conv_block(in_channels, w),
            conv_block(w, 2 * w, pool=True),
            Residual(2 * w),
            conv_block(2 * w, 4 * w, pool=True),
            conv_block(4 * w, 8 * w, pool=True),
            Residual(8 * w),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Linear(8 * w, num_classes, bias=False),
        )
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.scale
