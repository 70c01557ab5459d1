"""Stop a run whose loss stops being a number, before it overwrites good checkpoints with garbage."""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from tunelab.errors import UserError


class FiniteLossGuard(Callback):
    """Raise a UserError naming the epoch and step when the training loss is NaN or infinite.

    The run then ends (train.py records the failure in metrics.json; a sweep marks the job failed),
    and the checkpoints already written, `last.ckpt` included, are the last good ones. The check costs
    one device-to-host copy of the loss per step; timed GPU runs drop it (`callbacks=timed`, or
    `~callbacks.finite_loss` alone).
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss).item():
            # any Checkpoint callback (OnExceptionCheckpoint has neither path); the newest file written
            keys = ("last_model_path", "best_model_path")
            paths = [getattr(cb, key, "") for cb in trainer.checkpoint_callbacks for key in keys]
            last = max(filter(os.path.isfile, filter(None, paths)), key=os.path.getmtime, default="")
            kept = f"; the last good checkpoint is {last}" if last else "; no checkpoint had been written yet"
            raise UserError(
                f"the training loss became {loss.item()} at epoch {trainer.current_epoch}, step {trainer.global_step} "
                f"(batch {batch_idx}){kept}. Lower optimizer.lr or set clipping=norm."
            )
