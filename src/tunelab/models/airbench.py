"""The airbench94 network (Jordan, 2024): a whitened 2x2 patch stem and three conv groups.

Written from the paper's description: a frozen first layer that whitens 2x2 patches (initialised
from training images), then groups of conv -> max pool -> batch norm -> GELU -> conv -> batch
norm -> GELU at widths 64 / 256 / 256, a 3x3 max pool and a bias-free linear head whose logits
are scaled down. Batch norms keep their scale fixed at 1 and learn only their bias.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tunelab.errors import UserError


def frozen_scale_norm(channels: int, momentum: float) -> nn.BatchNorm2d:
    """Batch norm that learns a bias but keeps its scale at 1 (the scale would only fight the lr)."""
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=momentum)
    norm.weight.requires_grad_(False)
    return norm


class ConvGroup(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, momentum: float) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.MaxPool2d(2),
            frozen_scale_norm(c_out, momentum),
            nn.GELU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            frozen_scale_norm(c_out, momentum),
            nn.GELU(),
        )


class AirbenchNet(nn.Module):
    """32x32 images -> 2x2 whitening (31x31) -> groups (15, 7, 3) -> 3x3 max pool -> linear -> logits * scale."""

    output_modules = ("head",)  # sized by the classes: fine-tuning starts it anew where they differ
    data_init_parts = ("whiten",)  # what init_from_data sets: where fine-tuning loaded it, it is kept

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        widths: tuple[int, int, int] = (64, 256, 256),
        bn_momentum: float = 0.4,
        scale: float = 1 / 9,
        image_size: Sequence[int] = (32, 32),
    ) -> None:
        super().__init__()
        patch = in_channels * 2 * 2
        # 2 * patch filters: each whitening direction and its negative, so the GELU after it loses nothing
        self.whiten = nn.Conv2d(in_channels, 2 * patch, 2, bias=True)
        self.whiten.weight.requires_grad_(False)  # set from data by init_from_data, then fixed
        c_in = 2 * patch
        groups = []
        for width in widths:
            groups.append(ConvGroup(c_in, width, bn_momentum))
            c_in = width
        # the 2x2 stem takes a pixel off each side, each group halves: 32 -> 31 -> 15 -> 7 -> 3 (28 -> 3 too)
        final = [size - 1 for size in image_size]
        for _ in widths:
            final = [size // 2 for size in final]
        if min(final) < 1:
            raise UserError(f"model=airbench needs images of at least 16 x 16 pixels; the data has {image_size}")
        self.body = nn.Sequential(nn.GELU(), *groups, nn.MaxPool2d(final), nn.Flatten())
        self.head = nn.Linear(c_in, num_classes, bias=False)
        self.scale = scale

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the stem to whiten the 2x2 patches of `images` (N x C x H x W, normalised as in training)."""
        patches = images.float().unfold(2, 2, 1).unfold(3, 2, 1)  # N, C, H-1, W-1, 2, 2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, self.whiten.in_channels * 4)
        mean = patches.mean(0)
        centred = patches - mean
        eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred / len(patches))
        filters = eigenvectors.T / (eigenvalues + eps).sqrt()[:, None]
        offset = -(filters @ mean)  # so that the whitened patches have zero mean
        weight = torch.cat([filters, -filters]).reshape(-1, self.whiten.in_channels, 2, 2)
        self.whiten.weight.copy_(weight.to(self.whiten.weight))
        self.whiten.bias.copy_(torch.cat([offset, -offset]).to(self.whiten.bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.whiten(x))) * self.scale
