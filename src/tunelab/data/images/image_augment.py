"""Batch augmentations for image tensors (N, C, H, W) on whatever device they live on.

Each function takes a float batch and a torch.Generator on the batch's device, and draws one random
decision per image, so a whole batch is augmented by a handful of tensor ops instead of a Python
loop over samples (the point of keeping the data on the device).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, device=device)


def random_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Pad by `pad` pixels (reflect) and cut each image back to size at a random offset (translation)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channels, rows, cols]


def flip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the images where `mask` (one bool per image) is set."""
    return torch.where(mask[:, None, None, None], x.flip(-1), x)


def cutout(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Zero a `size` x `size` square (clipped at the border) at a random centre of each image."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=gen, device=x.device)[:, None, None]
    cx = torch.randint(0, w, (n,), generator=gen, device=x.device)[:, None, None]
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy).abs() <= size // 2) & ((xs - cx).abs() <= size // 2)
    if size % 2 == 0:  # an even square: drop one row and column of the symmetric (size + 1) box
        inside &= (ys - cy < size // 2) & (xs - cx < size // 2)
    return x.masked_fill(inside[:, None], 0.0)


def random_affine(
    x: torch.Tensor, degrees: float, scale: tuple[float, float], translate: float, gen: torch.Generator
) -> torch.Tensor:
    """Rotate by up to ±`degrees`, scale in `scale`, shift by up to `translate` of the size (bilinear)."""
    n = x.shape[0]
    angle = _uniform(n, -degrees, degrees, gen, x.device) * math.pi / 180
    factor = _uniform(n, scale[0], scale[1], gen, x.device)
    shift = _uniform(2 * n, -translate, translate, gen, x.device).view(n, 2) * 2  # grid units span [-1, 1]
    cos, sin = torch.cos(angle) / factor, torch.sin(angle) / factor
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
