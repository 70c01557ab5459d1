"""What a run leaves on disk besides Lightning's own files: metrics.json, flat hyperparameters."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams


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


def flat_hparams(cfg: DictConfig) -> dict[str, bool | int | float | str]:
    """The run's config flattened to `a/b/c: primitive`, what TensorBoard's HPARAMS tab can show.

    Lists become their string form; Hydra's own settings and the file paths are left out.
    """
    resolved = OmegaConf.to_container(cfg, resolve=True)
    flat: dict[str, bool | int | float | str] = {}

    def visit(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key not in ("_partial_", "paths", "hydra"):
                    visit(f"{prefix}/{key}" if prefix else str(key), value)
        elif node is None or isinstance(node, bool | int | float | str):
            flat[prefix] = "null" if node is None else node
        else:
            flat[prefix] = str(node)

    visit("", resolved)
    return flat


def log_hparams(loggers: list[Logger], params: dict, metrics: dict[str, float]) -> None:
    """Hyperparameters for every logger; TensorBoard's HPARAMS tab also lists the final metrics.

    Lightning's `TensorBoardLogger.log_hyperparams(params, metrics)` logs each metric again at step 0,
    which puts a false first point on every curve. The HPARAMS tab reads metric values from the
    scalars already logged under the same tags, so only the hparams summaries are written here.
    """
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            writer = logger.experiment._get_file_writer()
            for summary in hparams(params, metrics):
                writer.add_summary(summary)
            writer.flush()
        else:
            logger.log_hyperparams(params)
