"""LightningDataModule for windowed forecasting on a CSV series (ETT presets, any user CSV, synthetic)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch

from tunelab.data.batching import DeviceLoaders, trainer_batching, trainer_device
from tunelab.data.download import download
from tunelab.data.series.csv_series import MISSING, read_series_csv
from tunelab.data.series.scaler import fit_scaler
from tunelab.data.series.window_batches import WindowBatches
from tunelab.data.series.windows import SPLITS, WindowDataset, split_ranges
from tunelab.errors import UserError

FEATURE_MODES = ("S", "M", "MS")
SCALER_ROWS = ("all", "kept")  # the training rows the scaler is fit on, with train_fraction < 1


class TimeSeriesDataModule(DeviceLoaders, L.LightningDataModule):
    """Chronological train/val/test windows of one multivariate series.

    Feature modes: `S` predicts the target(s) from their own past, `M` predicts every column from
    every column, `MS` predicts the target(s) from every column.

    `train_fraction` < 1 trains on the last rows of the training period only (little data for a
    fine-tuned model). The scaler is still fit on the whole training period (`scaler_rows=all`), as the
    few-shot protocol of Time-Series-Library does, so val and test windows stay exactly those of a run
    on every row; `scaler_rows=kept` fits it on the kept rows only, as a user who has only those would.
    """

    def __init__(
        self,
        path: str | None = None,
        target: str | Sequence[str] = "OT",
        features: str = "S",
        date_column: str | None = "date",
        columns: Sequence[str] | None = None,
        seq_len: int = 96,
        horizon: int = 96,
        stride: int = 1,
        borders: Sequence[int] | None = None,
        ratios: Sequence[float] | None = (0.7, 0.1, 0.2),
        train_fraction: float = 1.0,
        scaler: str = "standard",
        scaler_rows: str = "all",
        missing: str = "error",
        batch_size: int = 32,
        augment: dict | None = None,
        url: str | None = None,
        sha256: str | None = None,
    ) -> None:
        super().__init__()
        if features not in FEATURE_MODES:
            raise UserError(f"data.features must be one of {', '.join(FEATURE_MODES)}; got '{features}'")
        if missing not in MISSING:
            raise UserError(f"data.missing must be one of {', '.join(MISSING)}; got '{missing}'")
        for key, value in (("seq_len", seq_len), ("horizon", horizon), ("stride", stride), ("batch_size", batch_size)):
            if not isinstance(value, int) or value <= 0:
                raise UserError(f"data.{key} must be a positive integer; got {value!r}")
        fraction_ok = isinstance(train_fraction, int | float) and not isinstance(train_fraction, bool)
        if not fraction_ok or not 0 < train_fraction <= 1:
            raise UserError(f"data.train_fraction must be in (0, 1]; got {train_fraction!r}")
        self.train_fraction = float(train_fraction)
        if scaler_rows not in SCALER_ROWS:
            raise UserError(f"data.scaler_rows must be one of {', '.join(SCALER_ROWS)}; got '{scaler_rows}'")
        self.scaler_rows = scaler_rows
        self.path = Path(path) if path is not None else None
        self.targets = [target] if isinstance(target, str) else list(target)
        self.features, self.date_column, self.columns = features, date_column, columns
        self.seq_len, self.horizon, self.stride = seq_len, horizon, stride
        self.borders, self.ratios, self.scaler, self.missing = borders, ratios, scaler, missing
        self.batch_size = batch_size
        self.augment = dict(augment or {})
        self.url, self.sha256 = url, sha256
        self.frame: pd.DataFrame | None = None
        self.datasets: dict[str, WindowDataset] = {}  # per-sample windows on the host: the reference
        self._on_device: dict[str, WindowBatches] = {}  # the same windows on the training device, batched

    # -- loading -----------------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Download the file (checksum-verified, atomic) when a preset names a URL and it is missing."""
        if self.path is not None and not self.path.exists() and self.url:
            download(self.url, self.path, self.sha256)

    def load_frame(self) -> pd.DataFrame:
        """The series as a float frame indexed by time; subclasses may generate it instead."""
        if self.path is None:
            raise UserError("data.path is not set: point it at a CSV file")
        if not self.path.exists() and self.url:
            raise UserError(f"data file not found: {self.path}; download it from {self.url} or set data.path")
        return read_series_csv(self.path, self.date_column, self.columns, self.targets, self.missing)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        frame = self.load_frame()
        for name in self.targets:
            if name not in frame.columns:
                raise UserError(f"data.target: column '{name}' is not in the series; it has {', '.join(frame.columns)}")
        if self.features == "S":
            frame = frame[self.targets]
        names = list(frame.columns)
        input_cols = list(range(len(names)))
        output_cols = input_cols if self.features == "M" else [names.index(t) for t in self.targets]

        values = frame.to_numpy(dtype=np.float64)
        ranges = split_ranges(len(values), self.seq_len, self.borders, self.ratios)
        train_start, train_end = ranges["train"]
        kept_start = train_end - round(self.train_fraction * (train_end - train_start))  # the last rows, by val
        fit_start = kept_start if self.scaler_rows == "kept" else train_start
        self.offset, self.spread = fit_scaler(values[fit_start:train_end], self.scaler)
        scaled = torch.as_tensor((values - self.offset) / self.spread, dtype=torch.float32)
        ranges["train"] = (kept_start, train_end)

        need = self.seq_len + self.horizon
        for split, (start, end) in ranges.items():
            if end - start < need:
                raise UserError(
                    f"the {split} split has {end - start} rows, fewer than data.seq_len + data.horizon = {need}; "
                    "shorten the window or give the split more rows"
                )
        augment = self.augment if any(self.augment.values()) else {}
        self.datasets = {
            split: WindowDataset(
                scaled[start:end],
                input_cols,
                output_cols,
                self.seq_len,
                self.horizon,
                # Evaluation scores every window (stride 1), as the benchmark protocols do.
                stride=self.stride if split == "train" else 1,
                first_row=start,
                **(augment if split == "train" else {}),
            )
            for split, (start, end) in ranges.items()
        }
        self.frame, self.names, self.ranges = frame, names, ranges
        self.input_cols, self.output_cols = input_cols, output_cols

    # -- what the model needs to know ----------------------------------------------------------------
    kind = "forecast"

    @property
    def n_inputs(self) -> int:
        return len(self.input_cols)

    @property
    def n_outputs(self) -> int:
        return len(self.output_cols)

    def net_dims(self) -> dict:
        return {
            "n_inputs": self.n_inputs,
            "output_cols": self.output_cols,
            "seq_len": self.seq_len,
            "horizon": self.horizon,
        }

    def task_info(self) -> dict:
        """The scaler of the output channels, so the task can report metrics in original units."""
        cols = self.output_cols
        return {
            "target_offset": torch.tensor(self.offset[cols], dtype=torch.float32),
            "target_scale": torch.tensor(self.spread[cols], dtype=torch.float32),
        }

    # -- loaders -------------------------------------------------------------------------------------
    def batches(self, split: str, train: bool) -> WindowBatches:
        """The split's windows gathered on the training device; the series is copied there once per run."""
        device = trainer_device(self.trainer)
        if split not in self._on_device or self._on_device[split].device != device:
            self._on_device[split] = WindowBatches.from_dataset(
                self.datasets[split], device, augment=train, batch_size=self.batch_size
            )
        batches = self._on_device[split]
        # a fresh pass object each call: Lightning's batch-size finder changes data.batch_size between calls
        return replace(batches, batch_size=self.batch_size, **trainer_batching(self.trainer, train))

    def prediction_table(self, forecasts: torch.Tensor) -> pd.DataFrame:
        """Test-window forecasts (window, horizon, channel), in original units, one row per forecast time."""
        start = self.ranges["test"][0] + self.seq_len
        windows, horizon, _ = forecasts.shape
        rows = np.arange(windows)[:, None] + np.arange(horizon)[None, :] + start
        table = pd.DataFrame(
            {
                "window": np.repeat(np.arange(windows), horizon),
                "step": np.tile(np.arange(1, horizon + 1), windows),
                "time": self.frame.index[rows.ravel()],
            }
        )
        for j, col in enumerate(self.output_cols):
            name = self.names[col]
            table[f"{name}_forecast"] = forecasts[:, :, j].reshape(-1).numpy()
            table[f"{name}_actual"] = self.frame[name].to_numpy()[rows.ravel()]
        return table


class SyntheticSeriesDataModule(TimeSeriesDataModule):
    """A generated hourly series (daily and weekly seasonality, trend, noise) that needs no file.

    Columns: `value` (the target) and two covariates, `load` and `temp`, that share its rhythm.
    """

    def __init__(self, length: int = 4000, noise: float = 0.1, series_seed: int = 0, **kwargs) -> None:
        kwargs.setdefault("target", "value")
        kwargs.setdefault("date_column", None)
        super().__init__(**kwargs)
        if length <= 0:
            raise UserError(f"data.length must be positive; got {length}")
        self.length, self.noise, self.series_seed = length, noise, series_seed

    def load_frame(self) -> pd.DataFrame:
        rng = np.random.default_rng(self.series_seed)
        t = np.arange(self.length, dtype=np.float64)
        daily, weekly = np.sin(2 * np.pi * t / 24), np.sin(2 * np.pi * t / 168)
        load = 10 + 3 * daily + 1.5 * weekly + self.noise * rng.standard_normal(self.length)
        temp = 20 + 5 * np.sin(2 * np.pi * (t - 6) / 24) + self.noise * rng.standard_normal(self.length)
        value = 0.5 * load + 0.2 * temp + 0.001 * t + self.noise * rng.standard_normal(self.length)
        index = pd.date_range("2020-01-01", periods=self.length, freq="h", name="date")
        return pd.DataFrame({"load": load, "temp": temp, "value": value}, index=index)


__all__ = ["SPLITS", "SyntheticSeriesDataModule", "TimeSeriesDataModule"]
