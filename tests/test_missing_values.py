"""data.missing: gaps in a CSV are refused, forward-filled, interpolated or dropped at the ends, before the split."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import QUICK, compose_cfg

from tunelab.data import TimeSeriesDataModule
from tunelab.errors import UserError
from tunelab.train import train

ROWS = 200


def write_csv(tmp_path: Path, gaps: dict[str, list[int]]) -> Path:
    """Hourly rows, `a` = i and `OT` = 2i, with the listed row numbers (0-based) left empty per column."""
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2021-01-01", periods=ROWS, freq="h"),
            "a": range(ROWS),
            "OT": [2.0 * i for i in range(ROWS)],
        }
    )
    frame = frame.astype({"a": float})
    for column, rows in gaps.items():
        frame.loc[rows, column] = None
    path = tmp_path / "gaps.csv"
    frame.to_csv(path, index=False)
    return path


def load(path: Path, missing: str) -> pd.DataFrame:
    dm = TimeSeriesDataModule(path=str(path), features="M", missing=missing, seq_len=8, horizon=4)
    return dm.load_frame()


INSIDE = {"a": [50, 51, 120], "OT": [51, 90]}  # gaps inside the series, one of two rows


def test_error_names_the_column_line_and_the_option(tmp_path):
    with pytest.raises(UserError, match=r"column 'a' has a missing value at line 52; set data.missing"):
        load(write_csv(tmp_path, INSIDE), "error")


def test_ffill_repeats_the_last_value_and_logs_the_count(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        frame = load(write_csv(tmp_path, INSIDE), "ffill")
    assert len(frame) == ROWS and not frame.isna().any().any()
    assert frame["a"].iloc[50] == 49 and frame["a"].iloc[51] == 49 and frame["OT"].iloc[90] == 178
    assert "data.missing=ffill: 5 missing values filled, 0 rows dropped" in caplog.text


def test_interpolate_draws_a_line_across_each_gap(tmp_path):
    frame = load(write_csv(tmp_path, INSIDE), "interpolate")
    assert len(frame) == ROWS
    assert frame["a"].iloc[50:52].tolist() == pytest.approx([50, 51]) and frame["OT"].iloc[90] == pytest.approx(180)


def test_rows_before_a_first_value_are_dropped_by_the_fills(tmp_path):
    frame = load(write_csv(tmp_path, {"OT": [0, 1, 2], "a": [100]}), "interpolate")
    assert len(frame) == ROWS - 3 and frame.index[0] == pd.Timestamp("2021-01-01 03:00")


def test_drop_removes_gaps_at_the_ends(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        frame = load(write_csv(tmp_path, {"OT": [0, 1], "a": [ROWS - 1]}), "drop")
    assert len(frame) == ROWS - 3 and frame.index[0] == pd.Timestamp("2021-01-01 02:00")
    assert "0 missing values filled, 3 rows dropped" in caplog.text


def test_drop_refuses_a_gap_inside_the_series(tmp_path):
    with pytest.raises(UserError) as info:
        load(write_csv(tmp_path, INSIDE), "drop")
    message = str(info.value)
    assert "data.missing=drop would remove line 52" in message and "time gap" in message and "\n" not in message


def test_unknown_option_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"data\.missing must be one of error, ffill, interpolate, drop; got 'mean'"):
        load(write_csv(tmp_path, INSIDE), "mean")


@pytest.mark.parametrize("missing", ["ffill", "interpolate"])
def test_a_series_with_gaps_trains(missing, tmp_path):
    path = write_csv(tmp_path, INSIDE)
    overrides = ["data=csv", f"data.path={path}", f"data.missing={missing}", "data.seq_len=8", "data.horizon=4"]
    metrics = train(compose_cfg([*overrides, *QUICK, "logger=none"], tmp_path))
    assert math.isfinite(metrics["test/mse"])
