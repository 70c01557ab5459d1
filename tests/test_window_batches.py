"""Forecast windows batched on the device: the same windows as the per-sample path, each once, seeded, sharded."""

from __future__ import annotations

import types

import pytest
import torch

from tunelab.data import SyntheticSeriesDataModule
from tunelab.data.series.window_batches import WindowBatches
from tunelab.data.series.windows import Windows

AUGMENT = {"jitter": 0.3, "scale": 0.2, "shift": 4}


def module(augment: dict | None = None, **kwargs) -> SyntheticSeriesDataModule:
    settings = {"length": 700, "seq_len": 24, "horizon": 8, "features": "MS", "batch_size": 32, **kwargs}
    dm = SyntheticSeriesDataModule(augment=augment, **settings)
    dm.setup()
    return dm


def windows(dm, split: str, augment: bool = False, **batching) -> WindowBatches:
    return WindowBatches.from_dataset(dm.datasets[split], torch.device("cpu"), augment, batch_size=32, **batching)


def stacked(batches) -> Windows:
    return Windows(*(torch.cat(parts) for parts in zip(*batches, strict=True)))


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_device_windows_equal_the_per_sample_windows(split):
    dm = module()
    dataset, batches = dm.datasets[split], windows(dm, split)
    idx = torch.tensor([0, 5, len(dataset) - 1, 17])
    batch = batches.gather(idx, 0, torch.Generator())
    for row, i in enumerate(idx.tolist()):
        assert all(torch.equal(got[row], want) for got, want in zip(batch, dataset[i], strict=True))
    x, y, start = batch
    assert torch.equal(start, idx + dm.ranges[split][0])  # rows of the whole series
    assert x.shape == (4, 24, 3) and y.shape == (4, 8, 1)


@pytest.mark.parametrize("split", ["val", "test"])
def test_every_evaluation_window_appears_exactly_once_in_order(split):
    dm = module(stride=5)  # the training stride never thins evaluation
    loader = dm.val_dataloader() if split == "val" else dm.test_dataloader()
    dataset = dm.datasets[split]
    assert len(dataset) % 32 != 0  # so the last batch is partial, and kept
    got, expected = stacked(loader), _collate(dataset)
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))


def _collate(dataset) -> Windows:
    return Windows(*(torch.stack(parts) for parts in zip(*(dataset[i] for i in range(len(dataset))), strict=True)))


def test_shuffling_is_seeded_by_seed_and_epoch():
    dm = module()
    epoch = [0]

    def first_batch(seed: int) -> torch.Tensor:
        return next(iter(windows(dm, "train", shuffle=True, seed=seed, epoch=lambda: epoch[0])))[0]

    assert torch.equal(first_batch(1), first_batch(1))
    assert not torch.equal(first_batch(1), first_batch(2))
    before = first_batch(1)
    epoch[0] = 1
    assert not torch.equal(first_batch(1), before)  # each epoch its own order


def test_training_pass_covers_each_window_at_most_once_with_the_last_partial_batch():
    dm = module()
    batches = windows(dm, "train", shuffle=True, seed=3)
    x = stacked(batches).x
    expected = _collate(dm.datasets["train"]).x
    assert len(x) == len(expected) and len(batches) == -(-len(expected) // 32)
    assert torch.equal(x[x[:, 0, 0].argsort()], expected[expected[:, 0, 0].argsort()])


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_evaluation_shards_are_disjoint_and_complete(world_size):
    dm = module()
    n = len(dm.datasets["test"])
    shards = [windows(dm, "test", rank=r, world_size=world_size) for r in range(world_size)]
    order = [s._indices(torch.Generator()) for s in shards]
    assert sorted(torch.cat(order).tolist()) == list(range(n))  # every window once, on one rank
    assert sum(len(stacked(s)[0]) for s in shards) == n


def test_ddp_training_shards_are_disjoint_and_equal():
    dm = module()
    shards = [windows(dm, "train", shuffle=True, seed=7, rank=r, world_size=3) for r in range(3)]
    order = [s._indices(torch.Generator().manual_seed(7)) for s in shards]
    assert len({len(o) for o in order}) == 1 and len({len(s) for s in shards}) == 1
    assert len(set(torch.cat(order).tolist())) == sum(len(o) for o in order)


def test_augmentation_touches_training_batches_only():
    plain, augmented = module(), module(augment=AUGMENT)
    for split in ("val", "test"):
        loader = getattr(augmented, f"{split}_dataloader")()
        assert torch.equal(stacked(loader)[0], _collate(plain.datasets[split])[0])
    train = augmented.train_dataloader()
    assert train.jitter == 0.3 and train.shift == 4
    x = next(iter(train)).x
    reference = next(iter(plain.train_dataloader())).x
    assert not torch.equal(x, reference)


def test_shifted_windows_are_windows_of_the_series():
    dm = module(augment={"shift": 6}, features="S")
    x, y, start = next(iter(windows(dm, "train", augment=True, shuffle=True, seed=0)))
    series = dm.datasets["train"].series[:, 0]
    every = series.unfold(0, 24 + 8, 1)  # all consecutive runs of input + target rows
    for whole, first in zip(torch.cat([x, y], dim=1)[:, :, 0], start, strict=True):
        assert torch.equal(every[first], whole)  # and `start` says which: the shifted row


def test_scale_multiplies_input_and_target_by_one_factor_per_window():
    dm = module(augment={"scale": 0.3}, features="S")
    x, y, _ = next(iter(windows(dm, "train", augment=True, seed=0)))  # ordered: window i is dataset[i]
    ref_x, ref_y, _ = _collate(dm.datasets["train"])
    ref_x, ref_y = ref_x[: len(x)], ref_y[: len(x)]
    factor = (x * ref_x).sum(dim=(1, 2)) / (ref_x * ref_x).sum(dim=(1, 2))
    assert factor.std() > 0.05  # each window its own factor
    assert torch.allclose(x, ref_x * factor[:, None, None], atol=1e-5)
    assert torch.allclose(y, ref_y * factor[:, None, None], atol=1e-5)


@pytest.mark.parametrize("overfit", [0, 2])
def test_overfit_batches_trains_on_the_same_batches_every_epoch(overfit):
    """debug=overfit: Lightning cannot unshuffle these loaders, so they hold order and augmentation fixed."""
    dm = module(augment=AUGMENT)
    cpu = types.SimpleNamespace(root_device=torch.device("cpu"))
    dm.trainer = types.SimpleNamespace(
        overfit_batches=overfit, global_rank=0, world_size=1, current_epoch=0, strategy=cpu
    )

    def first_batches() -> torch.Tensor:
        passes = iter(dm.train_dataloader())
        return torch.cat([next(passes)[0], next(passes)[0]])

    before = first_batches()
    dm.trainer.current_epoch = 1
    assert torch.equal(first_batches(), before) == bool(overfit)
