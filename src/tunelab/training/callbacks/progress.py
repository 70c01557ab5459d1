"""Lightning's rich progress bar, redrawn a few times a second instead of after every batch."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar


class ThrottledRichProgressBar(RichProgressBar):
    """RichProgressBar whose training bar is updated at most `max_hz` times per second.

    The stock bar updates its task, re-reads the progress-bar metrics and signals a redraw after
    every batch. With a small model on a CPU that is ~10% of the step time (bench/overhead.py);
    at 10 Hz nobody sees the difference. The last batch of an epoch is always drawn.
    """

    def __init__(self, max_hz: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_interval = 1.0 / max_hz
        self.last_draw = 0.0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        if now - self.last_draw >= self.min_interval or batch_idx + 1 >= self.total_train_batches:
            self.last_draw = now
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
