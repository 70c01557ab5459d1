"""Chronological splits and sliding windows over a (time, channel) array."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch.utils.data import Dataset

from tunelab.errors import UserError

SPLITS = ("train", "val", "test")


def split_ranges(
    n_rows: int, seq_len: int, borders: Sequence[int] | None, ratios: Sequence[float] | None
) -> dict[str, tuple[int, int]]:
    """Row ranges [start, end) of train / val / test.

    `borders` are the end rows of the three splits (the ETT convention); otherwise `ratios` split
    `n_rows`. Val and test start `seq_len` rows early so that their first window's target follows the
    previous split directly: every target row belongs to exactly one split.
    """
    if borders is not None:
        if len(borders) != 3 or list(borders) != sorted(borders) or borders[0] <= 0:
            raise UserError(f"data.borders must be three increasing positive row numbers; got {list(borders)}")
        if borders[2] > n_rows:
            raise UserError(f"data.borders ends at row {borders[2]} but the series has only {n_rows} rows")
        ends = list(borders)
    elif ratios is not None:
        if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6 or ratios[0] <= 0:
            raise UserError(f"data.ratios must be three non-negative fractions summing to 1; got {list(ratios)}")
        n_train, n_val = int(n_rows * ratios[0]), int(n_rows * ratios[1])
        ends = [n_train, n_train + n_val, n_rows]
    else:
        raise UserError("set data.borders or data.ratios to split the series")
    starts = [0, max(ends[0] - seq_len, 0), max(ends[1] - seq_len, 0)]
    return {name: (start, end) for name, start, end in zip(SPLITS, starts, ends, strict=True)}


class Windows(NamedTuple):
    """A forecasting sample or batch: input rows, the rows to predict, and where in the series they are."""

    x: torch.Tensor  # (seq_len, input channels), batched (batch, seq_len, input channels)
    y: torch.Tensor  # (horizon, output channels), batched likewise
    start: torch.Tensor  # int64 row of the whole series (the CSV's row) where x begins: its phase in a cycle


class WindowDataset(Dataset):
    """Windows (x, y, start): `seq_len` input rows of `inputs`, then `horizon` rows of `outputs` to predict.

    Training does not read windows one by one: the data module builds `WindowBatches` (the same
    windows, gathered a batch at a time on the device) from each split's dataset. This per-sample
    form stays as the split's record (series, columns, starts, augmentation), as the reference the
    tests compare the device windows with, and as the tutorial-style loader in bench/overhead.py.

    With `augment` (training only): a random time shift of the window start by up to `shift` rows,
    Gaussian `jitter` on the inputs, and a random amplitude `scale` applied to input and target alike
    (so the pair stays a consistent series).

    `series` holds the split's rows of the whole series from row `first_row` on, so a window's `start`
    is `first_row` plus its index in `series`: the same row numbering in every split.
    """

    def __init__(
        self,
        series: torch.Tensor,
        input_cols: Sequence[int],
        output_cols: Sequence[int],
        seq_len: int,
        horizon: int,
        stride: int = 1,
        jitter: float = 0.0,
        scale: float = 0.0,
        shift: int = 0,
        first_row: int = 0,
    ) -> None:
        self.series, self.first_row = series, first_row
        self.input_cols = list(input_cols)
        self.output_cols = list(output_cols)
        self.seq_len, self.horizon = seq_len, horizon
        self.last_start = series.shape[0] - seq_len - horizon
        self.starts = range(0, self.last_start + 1, stride)
        self.jitter, self.scale, self.shift = jitter, scale, shift

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> Windows:
        start = self.starts[index]
        if self.shift:
            offset = int(torch.randint(-self.shift, self.shift + 1, ()))
            start = min(max(start + offset, 0), self.last_start)
        mid = start + self.seq_len
        x = self.series[start:mid, self.input_cols]
        y = self.series[mid : mid + self.horizon, self.output_cols]
        if self.scale:
            factor = 1.0 + self.scale * torch.randn(())
            x, y = x * factor, y * factor
        if self.jitter:
            x = x + self.jitter * torch.randn_like(x)
        return Windows(x, y, torch.tensor(self.first_row + start))
