"""What a run leaves on disk besides Lightning's own files: metrics.json, written so that a kill cannot truncate it."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: Path, data: bytes | memoryview) -> None:
    """Write via a flushed temporary file and a rename: readers see the old file or the whole new one.

    A failed write (full disk, read-only folder) leaves the old file in place and raises an OSError
    that names `path`.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes files private; run files are as readable as any other
        os.replace(tmp, path)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from err
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: Path, payload: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, allow_nan=True) + "\n")


def finite_floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metrics as plain floats (tensors converted), keeping NaN/Inf visible rather than dropped."""
    out = {}
    for key, value in metrics.items():
        number = float(value)
        out[key] = number if math.isfinite(number) else float("nan")
    return out
