"""Per-column scalers fitted on the training rows only, so no statistic of val/test leaks into training."""

from __future__ import annotations

import numpy as np

from tunelab.errors import UserError

KINDS = ("standard", "minmax", "none")


def fit_scaler(train_rows: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Return per-column (offset, scale) with scaled = (x - offset) / scale."""
    width = train_rows.shape[1]
    if kind == "standard":
        offset, scale = train_rows.mean(axis=0), train_rows.std(axis=0)
    elif kind == "minmax":
        offset, scale = train_rows.min(axis=0), np.ptp(train_rows, axis=0)
    elif kind == "none":
        offset, scale = np.zeros(width), np.ones(width)
    else:
        raise UserError(f"data.scaler must be one of {', '.join(KINDS)}; got '{kind}'")
    # A constant column would divide by zero; leave its spread alone.
    scale = np.where(scale > 0, scale, 1.0)
    return offset.astype(np.float64), scale.astype(np.float64)
