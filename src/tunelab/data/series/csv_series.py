"""Reading a time series from CSV with errors that name the file and the column."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tunelab.errors import UserError

log = logging.getLogger(__name__)
MISSING = ("error", "ffill", "interpolate", "drop")


def read_series_csv(
    path: Path,
    date_column: str | None,
    columns: Sequence[str] | None,
    targets: Sequence[str] = (),
    missing: str = "error",
) -> pd.DataFrame:
    """Load `path` with rows in time order; return the numeric `columns` (all but the date if None).

    `targets` must be among them; every column returned is checked for non-numeric values, and its
    missing values are refused or handled as `missing` says (`fill_missing`).
    Line numbers in messages count the header as line 1, as an editor shows them.
    The date column (when given) becomes the index and must be parseable, sorted and unique: a
    shuffled or duplicated time axis would silently leak the future into the training split.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file not found: {path} (set data.path)")
    try:
        frame = pd.read_csv(path, encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"data file {path} is not UTF-8 text ({err.reason} at byte {err.start})") from err
    except pd.errors.EmptyDataError as err:
        raise UserError(f"data file {path} is empty") from err
    except (pd.errors.ParserError, OSError) as err:
        raise UserError(f"data file {path} could not be parsed as CSV: {str(err).strip()}") from err
    if frame.empty:
        raise UserError(f"data file {path} has a header but no rows")

    if date_column is not None:
        if date_column not in frame.columns:
            raise UserError(_unknown(path, "data.date_column", date_column, frame.columns))
        dates = pd.to_datetime(frame[date_column], errors="coerce")
        if dates.isna().any():
            row = int(dates.isna().to_numpy().argmax())
            raise UserError(f"data file {path}: column '{date_column}' has an unreadable date at line {row + 2}")
        if dates.duplicated().any():
            row = int(dates.duplicated().to_numpy().argmax())
            raise UserError(f"data file {path}: column '{date_column}' repeats the date {dates[row]} (line {row + 2})")
        if not dates.is_monotonic_increasing:
            row = int((dates.diff() < pd.Timedelta(0)).to_numpy().argmax())
            raise UserError(
                f"data file {path}: column '{date_column}' is not sorted (line {row + 2} goes back in time)"
            )
        frame = frame.drop(columns=date_column).set_index(pd.DatetimeIndex(dates, name=date_column))

    for key, names in (("data.target", targets), ("data.columns", columns or ())):
        for name in names:
            if name not in frame.columns:
                raise UserError(_unknown(path, key, name, frame.columns))
    wanted = list(frame.columns) if columns is None else list(dict.fromkeys([*columns, *targets]))
    frame = frame[wanted]
    for name in wanted:
        values = pd.to_numeric(frame[name], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if missing != "error":  # gaps are left to the data.missing policy
            bad &= ~frame[name].isna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raw = frame[name].iloc[row]
            what = "a missing value" if pd.isna(raw) else f"the non-numeric value {raw!r}"
            hint = "; set data.missing to ffill, interpolate or drop to handle gaps" if pd.isna(raw) else ""
            raise UserError(f"data file {path}: column '{name}' has {what} at line {row + 2}{hint}")
        frame[name] = values.astype("float64")
    return fill_missing(frame, missing, path)


def fill_missing(frame: pd.DataFrame, missing: str, path: Path) -> pd.DataFrame:
    """Apply the `data.missing` policy to the gaps (NaN) of `frame`, before any split; log what it changed.

    `ffill` repeats the last value; `interpolate` draws a straight line across each gap (in time, when
    rows carry dates); rows before a column's first value have nothing to fill from and are dropped
    with both. `drop` removes rows with a gap, but only at the start or end of the series: a row
    removed from the middle would make windows span a time jump, so it refuses that.
    """
    gaps = frame.isna().any(axis=1).to_numpy()
    if not gaps.any():
        return frame
    observed = np.flatnonzero(~gaps)
    if not len(observed):
        raise UserError(f"data file {path}: no row has a value in every column (data.missing={missing})")
    first, last = observed[0], observed[-1]
    if missing == "drop":
        inside = np.flatnonzero(gaps[first : last + 1])
        if len(inside):
            raise UserError(
                f"data.missing=drop would remove line {first + inside[0] + 2} of {path} from inside the series, "
                "so windows would span a time gap; use data.missing=ffill or interpolate"
            )
        filled = frame.iloc[first : last + 1]
    else:
        if missing == "interpolate":
            method = "time" if isinstance(frame.index, pd.DatetimeIndex) else "linear"
            filled = frame.interpolate(method=method, limit_area="inside").ffill()
        else:
            filled = frame.ffill()
        filled = filled.iloc[int(np.flatnonzero(filled.notna().all(axis=1).to_numpy())[0]) :]
    changed = int(frame.loc[filled.index].isna().to_numpy().sum())
    log.info(
        f"data.missing={missing}: {changed} missing values filled, {len(frame) - len(filled)} rows dropped "
        f"({path.name})"
    )
    return filled


def _unknown(path: Path, key: str, name: str, available: Sequence[str]) -> str:
    return f"{key}: column '{name}' is not in {path}; it has {', '.join(map(str, available))}"
