"""Image classification data: a seeded val split of the training images, the official test set, batches on the device.

A subclass says where its images come from (`load`); everything else, the split, normalisation,
device-side batches and augmentation, and what the net needs to know, is shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import pandas as pd
import torch

from tunelab.data.batching import DeviceLoaders, trainer_batching, trainer_device
from tunelab.data.images.device_batches import Augment, DeviceBatches
from tunelab.errors import UserError


class ImageDataModule(DeviceLoaders, L.LightningDataModule):
    """Labelled images for a classifier: `val_size` training images held out (seeded), the test set as is.

    `classes` keeps those classes only, in every split, relabelled 0..k-1 in the order given (a model
    pretrained on some classes, fine-tuned on others); `per_class` keeps that many training images of
    each class, the first ones in the seeded order, with validation and test unchanged (little data).
    """

    def __init__(
        self,
        root: str,
        val_size: float | int = 5000,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        augment: dict | None = None,
        channels_last: bool = False,
        split_seed: int = 0,
        classes: Sequence[int] | None = None,
        per_class: int | None = None,
    ) -> None:
        super().__init__()
        if batch_size <= 0 or eval_batch_size <= 0:
            raise UserError(
                f"data.batch_size and data.eval_batch_size must be positive; got {batch_size}, {eval_batch_size}"
            )
        if per_class is not None and (not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1):
            raise UserError(f"data.per_class must be a positive integer or null; got {per_class!r}")
        self.keep_classes = None if classes is None else list(classes)
        self.per_class = per_class
        self.root, self.val_size, self.split_seed = Path(root), val_size, split_seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.augment = Augment(**(augment or {}))
        self.channels_last = channels_last
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._on_device: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def load(self) -> dict:
        """`train_images`, `test_images` (N x C x H x W uint8), `train_labels`, `test_labels` and `classes`."""
        raise NotImplementedError

    def prepare_data(self) -> None:
        self.load()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        data = self.load()
        n = len(data["train_images"])
        n_val = round(self.val_size * n) if isinstance(self.val_size, float) else int(self.val_size)
        if not 0 <= n_val < n:
            raise UserError(f"data.val_size must leave training images: got {self.val_size} of {n}")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.split_seed))
        train_idx, val_idx = order[n_val:], order[:n_val]
        images, labels = data["train_images"], data["train_labels"]
        self.splits = {
            "train": (images[train_idx], labels[train_idx]),
            "val": (images[val_idx], labels[val_idx]),
            "test": (data["test_images"], data["test_labels"]),
        }
        self.classes = data["classes"]
        if self.keep_classes is not None:
            self.select_classes(self.keep_classes)
        if self.per_class is not None:
            self.limit_per_class(self.per_class)
        train = self.splits["train"][0].float().div(255)
        self.mean, self.std = train.mean(dim=(0, 2, 3)), train.std(dim=(0, 2, 3))

    def select_classes(self, keep: list[int]) -> None:
        """Only the images of `keep` in every split, labelled by their position in `keep`."""
        n = len(self.classes)
        if not keep or len(set(keep)) != len(keep) or any(not isinstance(c, int) or not 0 <= c < n for c in keep):
            raise UserError(f"data.classes must list distinct class indices in 0-{n - 1}; got {keep}")
        relabel = torch.full((n,), -1, dtype=torch.long)
        relabel[torch.tensor(keep)] = torch.arange(len(keep))
        for split, (images, labels) in self.splits.items():
            kept = relabel[labels] >= 0
            self.splits[split] = (images[kept], relabel[labels[kept]])
        self.classes = [self.classes[c] for c in keep]

    def limit_per_class(self, n: int) -> None:
        """The first `n` training images of each class (the split's order is already seeded and shuffled)."""
        images, labels = self.splits["train"]
        counts = torch.bincount(labels, minlength=len(self.classes))
        short = int(counts.argmin())
        if counts[short] < n:
            raise UserError(
                f"data.per_class={n}, but class '{self.classes[short]}' has {int(counts[short])} training images"
            )
        # rank of each image among those of its class, in split order
        rank = torch.empty_like(labels)
        for c in range(len(self.classes)):
            where = (labels == c).nonzero().squeeze(1)
            rank[where] = torch.arange(len(where))
        kept = rank < n
        self.splits["train"] = (images[kept], labels[kept])

    # -- what the model needs to know ----------------------------------------------------------------
    kind = "classify"

    def net_dims(self) -> dict:
        channels, height, width = self.splits["train"][0].shape[1:]
        return {"in_channels": channels, "num_classes": len(self.classes), "image_size": [height, width]}

    def task_info(self) -> dict:
        return {"classes": list(self.classes)}

    def train_sample(self, n: int) -> torch.Tensor:
        """The first `n` training images as the net sees them (scaled, normalised, not augmented)."""
        images = self.splits["train"][0][:n].float().div(255)
        return (images - self.mean[:, None, None]) / self.std[:, None, None]

    # -- loaders -------------------------------------------------------------------------------------
    def batches(self, split: str, train: bool) -> DeviceBatches:
        device = trainer_device(self.trainer)
        if split not in self._on_device or self._on_device[split][0].device != device:
            images, labels = self.splits[split]
            self._on_device[split] = (images.to(device), labels.to(device))  # once per run, not per batch
        images, labels = self._on_device[split]
        return DeviceBatches(
            images,
            labels,
            self.batch_size if train else self.eval_batch_size,
            self.mean,
            self.std,
            augment=self.augment if train else None,
            fill_last=train,  # full batches for batch norm (and one compiled shape), every image seen each epoch
            channels_last=self.channels_last,
            **trainer_batching(self.trainer, train),
        )

    def prediction_table(self, predicted: torch.Tensor) -> pd.DataFrame:
        """One row per test image: predicted and true class."""
        labels = self.splits["test"][1]
        return pd.DataFrame(
            {
                "index": range(len(labels)),
                "predicted": predicted.numpy(),
                "label": labels.numpy(),
                "predicted_name": [self.classes[i] for i in predicted.tolist()],
                "label_name": [self.classes[i] for i in labels.tolist()],
            }
        )
