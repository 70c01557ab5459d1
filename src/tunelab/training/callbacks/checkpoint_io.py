"""Checkpoint writing that a kill cannot corrupt, and RNG states that let a resumed run repeat exactly."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from tunelab.training.run.run_files import write_bytes_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file beside it, flush it to disk, then rename it into place.

    A process killed while saving leaves the previous `last.ckpt` untouched (plus, at worst, a stray
    `.tmp` file), never a truncated checkpoint under the real name. Lightning's own writer goes through
    an fsspec transaction whose temporary file may sit on another file system, where the final move
    is a copy.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        # Serialise in memory first: torch.save into a file reports a full disk as an opaque
        # RuntimeError from its zip writer, a plain write raises OSError(ENOSPC) that names the file.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(Path(path), buffer.getbuffer())


class RNGStateCheckpoint(Callback):
    """Save the python / numpy / torch RNG states in each checkpoint and restore them on resume.

    With them, a run resumed from `last.ckpt` draws the same shuffles, dropout masks and augmentations
    as the run would have drawn without the interruption.
    """

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        states = _collect_rng_states(include_cuda=torch.cuda.is_available())
        name, keys, *rest = states["numpy"]  # plain lists: checkpoints load with weights_only=True
        states["numpy"] = [name, keys.tolist(), *rest]
        checkpoint["rng_states"] = states

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if "rng_states" in checkpoint:
            states = dict(checkpoint["rng_states"])
            name, keys, *rest = states["numpy"]
            states["numpy"] = (name, np.asarray(keys, dtype=np.uint32), *rest)
            _set_rng_states(states)
