"""The optimizer / scheduler wiring that every task shares."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import lightning as L
import matplotlib.pyplot as plt
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.optim import Optimizer

from tunelab.training.optim import build_optimizer
from tunelab.training.schedules import build_scheduler


class TrainingTask(L.LightningModule):
    """Base LightningModule: holds `net`, builds its optimizer and LR schedule from config.

    `optimizer` is a Hydra `_partial_` optimizer (everything but the parameters); `scheduler` is
    the `scheduler` config group: `name`, `interval` (step | epoch), `warmup`, `monitor`, and the
    schedule's own parameters.
    """

    kind: str  # "forecast" or "classify": the kind of data module the task can train on
    val_metric_names: tuple[str, ...]  # what validation logs: the names a monitor may watch

    def __init__(self, net: nn.Module, optimizer: Callable[..., Optimizer], scheduler: Mapping) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_config = dict(scheduler)

    def set_learning_rate(self, lr: float) -> None:
        """Replace the optimizer's learning rate (used by the LR finder before fit)."""
        self.optimizer_factory = functools.partial(self.optimizer_factory, lr=lr)

    def configure_optimizers(self) -> dict | tuple[list, list]:
        optimizer = build_optimizer(self.optimizer_factory, self)
        params = dict(self.scheduler_config)
        name, interval = params.pop("name"), params.pop("interval", "epoch")
        warmup, monitor = int(params.pop("warmup", 0)), params.pop("monitor", None)
        total = self.trainer.estimated_stepping_batches if interval == "step" else self.trainer.max_epochs
        schedulers = build_scheduler(optimizer, name, interval, warmup, max(int(total or 1), 1), monitor, params)
        return [optimizer], schedulers

    def log_figure(self, tag: str, figure: plt.Figure) -> None:
        """Send a matplotlib figure to every TensorBoard logger (as an image), then free it."""
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(tag, figure, global_step=self.global_step)
        plt.close(figure)
