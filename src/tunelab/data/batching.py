"""One batching mechanism for data that lives on the training device: index order, shards, partial batches.

A per-sample Dataset + DataLoader builds every sample in Python, collates them on the host and copies
each batch to the device. Here the data is moved to the device once; a batch is a vector of indices,
and a subclass's `gather` turns it into tensors with a few indexing operations (airbench's approach).
This base owns everything the two kinds of data share: the index order (seeded by epoch), DDP
sharding by rank and the last partial batch (kept, or filled up: never dropped, so that every item is
seen in every pass, however small the set). Lightning accepts any sized iterable as a dataloader, so
epochs, `limit_*_batches` and `overfit_batches` work unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch

from tunelab.errors import UserError


@dataclass(kw_only=True)
class IndexBatches:
    """One pass over `n_items` per `iter()`, in batches of `self.batch_size` indices given to `gather`.

    Shuffled passes (training) give every DDP rank the same number of items, so the ranks' gradient
    all-reduces stay in step; ordered passes (evaluation) give every item to exactly one rank, so
    each val/test item is scored exactly once.
    """

    shuffle: bool = False
    fill_last: bool = False  # fill the last partial batch up with items from the start of the pass (repeated)
    seed: int = 0  # with the epoch, seeds the shuffle and the augmentations
    rank: int = 0  # this process's DDP rank, and the number of ranks
    world_size: int = 1
    epoch: Callable[[], int] = field(default=lambda: 0)  # the trainer's current epoch

    # -- what a subclass provides: a `batch_size` field (positional in CIFAR's DeviceBatches), and --
    @property
    def items(self) -> torch.Tensor:
        """A tensor with one entry per item (labels, window starts): its length and device are the data's."""
        raise NotImplementedError

    def gather(self, idx: torch.Tensor, epoch: int, gen: torch.Generator) -> Any:
        """The batch of items `idx` (on the device); `gen` draws this pass's augmentations."""
        raise NotImplementedError

    # -- the shared mechanism ----------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def device(self) -> torch.device:
        return self.items.device

    def _shard_size(self) -> int:
        if self.shuffle:  # equal shards: the last n % world_size items of the shuffled order wait a pass
            return self.n_items // self.world_size
        return len(range(self.rank, self.n_items, self.world_size))

    def _indices(self, gen: torch.Generator) -> torch.Tensor:
        n, device = self.n_items, self.device
        order = torch.randperm(n, generator=gen, device=device) if self.shuffle else torch.arange(n, device=device)
        return order[self.rank :: self.world_size][: self._shard_size()]

    def __len__(self) -> int:
        size = self._shard_size()
        return -(-size // self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        epoch = self.epoch()
        gen = torch.Generator(device=self.device).manual_seed(self.seed * 1_000_003 + epoch)
        order = self._indices(gen)
        if self.fill_last and len(order) % self.batch_size:  # every batch full: a set smaller than one batch too
            wanted = len(self) * self.batch_size
            order = order.repeat(-(-wanted // len(order)))[:wanted]
        for i in range(len(self)):
            yield self.gather(order[i * self.batch_size : (i + 1) * self.batch_size], epoch, gen)


def trainer_device(trainer: L.Trainer | None) -> torch.device:
    """Where a data module's tensors go: the trainer's device, or the CPU outside a fit."""
    return trainer.strategy.root_device if trainer is not None else torch.device("cpu")


def trainer_batching(trainer: L.Trainer | None, train: bool) -> dict:
    """The `IndexBatches` settings a loader takes from its trainer: training shuffles; seed, DDP rank, epoch.

    With `trainer.overfit_batches` (debug=overfit) every epoch trains on the same batches, augmented
    alike: no shuffle, and the epoch that seeds the augmentations held at 0. Lightning turns off the
    shuffle of a DataLoader's sampler for this, but these loaders have none.
    """
    overfit = bool(trainer and trainer.overfit_batches)
    return {
        "shuffle": train and not overfit,
        "seed": torch.initial_seed() % 2**31,  # set by seed_everything: the same seed gives the same order
        "rank": trainer.global_rank if trainer else 0,
        "world_size": trainer.world_size if trainer else 1,
        "epoch": (lambda: 0) if trainer is None or overfit else (lambda: trainer.current_epoch),
    }


class DeviceLoaders:
    """Lightning's loader hooks for a data module whose `batches(split, train)` builds an `IndexBatches`."""

    def batches(self, split: str, train: bool) -> IndexBatches:
        raise NotImplementedError

    def train_dataloader(self) -> IndexBatches:
        batches = self.batches("train", train=True)
        if not len(batches):  # Lightning would skip the fit with a warning, and the run would look finished
            where = f" for {batches.world_size} processes" if batches.world_size > 1 else ""
            message = f"data: the training split has {batches.n_items} items{where}: no batch, nothing would train"
            raise UserError(message)
        return batches

    def val_dataloader(self) -> IndexBatches:
        return self.batches("val", train=False)

    def test_dataloader(self) -> IndexBatches:
        return self.batches("test", train=False)

    def predict_dataloader(self) -> IndexBatches:
        return self.batches("test", train=False)
