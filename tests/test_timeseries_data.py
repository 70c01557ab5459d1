"""The forecasting data protocol: splits, scaler, windows, feature modes, augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CONF, ETT_DIR, ROOT

from tunelab.cli import compose_train
from tunelab.data import SyntheticSeriesDataModule, TimeSeriesDataModule
from tunelab.data.download import file_digest
from tunelab.data.series.windows import split_ranges

ETT_BORDERS = [8640, 11520, 14400]


def ett(ett_dir, **kwargs) -> TimeSeriesDataModule:
    dm = TimeSeriesDataModule(path=str(ett_dir / "ETTh1.csv"), target="OT", borders=ETT_BORDERS, **kwargs)
    dm.setup("fit")
    return dm


@pytest.mark.parametrize("seq_len", [96, 336])
def test_ett_split_borders(seq_len):
    assert split_ranges(17420, seq_len, ETT_BORDERS, None) == {
        "train": (0, 8640),
        "val": (8640 - seq_len, 11520),
        "test": (11520 - seq_len, 14400),
    }


@pytest.mark.parametrize(("seq_len", "horizon"), [(96, 96), (336, 336), (96, 720)])
def test_every_test_window_is_scored(ett_dir, seq_len, horizon):
    dm = ett(ett_dir, seq_len=seq_len, horizon=horizon)
    assert len(dm.datasets["test"]) == 2880 - horizon + 1
    assert len(dm.datasets["val"]) == 2880 - horizon + 1
    total = sum(len(b[0]) for b in dm.test_dataloader())  # no drop_last
    assert total == 2880 - horizon + 1


def test_scaler_sees_only_training_rows(ett_dir):
    dm = ett(ett_dir, features="M")
    raw = pd.read_csv(ett_dir / "ETTh1.csv").drop(columns="date").to_numpy()
    np.testing.assert_allclose(dm.offset, raw[:8640].mean(axis=0))
    np.testing.assert_allclose(dm.spread, raw[:8640].std(axis=0))
    train = dm.datasets["train"].series
    assert train.mean(0).abs().max() < 1e-4 and (train.std(0, unbiased=False) - 1).abs().max() < 1e-4
    # the test rows keep their own distribution: a leak would have centred them too
    assert dm.datasets["test"].series.mean(0).abs().max() > 0.1


def test_windows_are_consecutive_rows(ett_dir):
    dm = ett(ett_dir, seq_len=8, horizon=4, scaler="none")
    raw = pd.read_csv(ett_dir / "ETTh1.csv")["OT"].to_numpy(dtype=np.float32)
    x, y, first = dm.datasets["test"][5]
    start = 11520 - 8 + 5
    np.testing.assert_allclose(x[:, 0].numpy(), raw[start : start + 8])
    np.testing.assert_allclose(y[:, 0].numpy(), raw[start + 8 : start + 12])
    assert int(first) == start  # the row of the whole series, whatever the split


@pytest.mark.parametrize(("features", "n_in", "n_out"), [("S", 1, 1), ("M", 7, 7), ("MS", 7, 1)])
def test_feature_modes(ett_dir, features, n_in, n_out):
    dm = ett(ett_dir, features=features, seq_len=24, horizon=12)
    x, y, _ = dm.datasets["train"][0]
    assert x.shape == (24, n_in) and y.shape == (12, n_out)
    assert (dm.n_inputs, dm.n_outputs) == (n_in, n_out)
    if features == "MS":  # the target is predicted, the inputs include it
        assert torch.equal(x[:, dm.output_cols[0]], dm.datasets["train"].series[:24, dm.output_cols[0]])


def test_ratio_split_and_stride():
    dm = SyntheticSeriesDataModule(length=1000, seq_len=20, horizon=10, stride=5, ratios=[0.6, 0.2, 0.2])
    dm.setup()
    assert dm.ranges == {"train": (0, 600), "val": (580, 800), "test": (780, 1000)}
    assert len(dm.datasets["train"]) == (600 - 30) // 5 + 1
    assert len(dm.datasets["val"]) == 220 - 30 + 1  # evaluation keeps stride 1


def test_minmax_scaler_and_original_units():
    dm = SyntheticSeriesDataModule(length=500, seq_len=10, horizon=5, scaler="minmax", features="S")
    dm.setup()
    train = dm.datasets["train"].series
    assert float(train.min()) == pytest.approx(0.0, abs=1e-6) and float(train.max()) == pytest.approx(1.0, abs=1e-6)
    info = dm.task_info()
    offset, scale = info["target_offset"], info["target_scale"]
    raw = dm.frame["value"].to_numpy()
    restored = dm.datasets["train"].series[:, 0] * scale + offset
    np.testing.assert_allclose(restored.numpy(), raw[:350], rtol=1e-5)


def test_augmentation_is_train_only_and_seeded():
    kwargs = dict(length=500, seq_len=10, horizon=5, augment={"jitter": 0.5, "scale": 0.2, "shift": 3})
    dm = SyntheticSeriesDataModule(**kwargs)
    dm.setup()
    plain = SyntheticSeriesDataModule(length=500, seq_len=10, horizon=5)
    plain.setup()
    torch.manual_seed(0)
    a = dm.datasets["train"][50]
    torch.manual_seed(0)
    b = dm.datasets["train"][50]
    assert torch.equal(a[0], b[0])  # same seed, same augmentation
    assert not torch.equal(a[0], plain.datasets["train"][50][0])
    for split in ("val", "test"):
        assert torch.equal(dm.datasets[split][7][0], plain.datasets[split][7][0])


@pytest.mark.parametrize("name", ["etth1", "etth2"])
def test_the_shipped_ett_files_are_the_published_ones_and_read_by_default(name, tmp_path):
    """data=etth1 / etth2 read the repository's unmodified copies (README's data section), no download."""
    cfg = compose_train(CONF, [f"data={name}"], root_dir=ROOT, output_dir=tmp_path)
    path = Path(cfg.data.path)
    assert path == ETT_DIR / f"{name.replace('etth', 'ETTh')}.csv"
    assert file_digest(path) == cfg.data.sha256
