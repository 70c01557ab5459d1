"""CIFAR-10 batches drawn from image tensors that already live on the training device (CPU or GPU).

The uint8 images are moved to the device once, and each batch is indexed, converted, augmented and
normalised there by a few tensor operations (bench/cifar_loader.py measures the difference to a
per-sample DataLoader). Index order, DDP sharding and partial batches are `IndexBatches`', shared
with the forecasting windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tunelab.data.batching import IndexBatches
from tunelab.data.images import image_augment as A
from tunelab.errors import UserError

FLIPS = ("none", "random", "alternate")


@dataclass
class Augment:
    """Training augmentations, each off when 0 / none."""

    crop_pad: int = 0  # random crop after reflect padding by this many pixels (translation)
    flip: str = "none"  # random: each image with p=0.5 | alternate: flip every other epoch | none
    cutout: int = 0  # side of a zeroed square at a random position
    degrees: float = 0.0  # random affine: rotation range (±degrees)
    scale: tuple[float, float] = (1.0, 1.0)  # random affine: scale range
    translate: float = 0.0  # random affine: shift, as a fraction of the image size

    def __post_init__(self) -> None:
        if self.flip not in FLIPS:
            raise UserError(f"data.augment.flip must be one of {', '.join(FLIPS)}; got '{self.flip}'")
        if self.crop_pad < 0 or self.cutout < 0 or self.degrees < 0 or self.translate < 0:
            raise UserError("data.augment.crop_pad, cutout, degrees and translate must be >= 0")


@dataclass
class DeviceBatches(IndexBatches):
    """One pass over `images` per `iter()`: shuffled (seeded by epoch), sharded, augmented, normalised."""

    images: torch.Tensor  # uint8 (N, C, H, W), on the device
    labels: torch.Tensor  # int64 (N,), on the device
    batch_size: int
    mean: torch.Tensor  # per-channel mean of the training images, in [0, 1]
    std: torch.Tensor
    augment: Augment | None = None  # None for evaluation: never augmented
    channels_last: bool = False

    def __post_init__(self) -> None:
        self.mean = self.mean.to(self.images.device).view(1, -1, 1, 1)
        self.std = self.std.to(self.images.device).view(1, -1, 1, 1)
        if self.augment is not None and self.augment.flip == "alternate":
            gen = torch.Generator(device=self.images.device).manual_seed(self.seed)
            self.flip_base = torch.rand(len(self.images), generator=gen, device=self.images.device) < 0.5

    @property
    def items(self) -> torch.Tensor:
        return self.labels

    def gather(self, idx: torch.Tensor, epoch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[idx].float().div_(255)
        if self.augment is not None:
            x = self._augment(x, idx, epoch, gen)
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.labels[idx]

    def _augment(self, x: torch.Tensor, idx: torch.Tensor, epoch: int, gen: torch.Generator) -> torch.Tensor:
        aug = self.augment
        if aug.degrees or aug.translate or tuple(aug.scale) != (1.0, 1.0):
            x = A.random_affine(x, aug.degrees, tuple(aug.scale), aug.translate, gen)
        if aug.crop_pad:
            x = A.random_crop(x, aug.crop_pad, gen)
        if aug.flip == "random":
            x = A.flip(x, torch.rand(len(x), generator=gen, device=x.device) < 0.5)
        elif aug.flip == "alternate":
            x = A.flip(x, self.flip_base[idx] ^ bool(epoch % 2))
        if aug.cutout:
            x = A.cutout(x, aug.cutout, gen)
        return x
