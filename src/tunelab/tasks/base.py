"""The optimizer / scheduler wiring that every task shares."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import lightning as L
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.loggers import MLFlowLogger, TensorBoardLogger, WandbLogger
from torch import nn
from torch.optim import Optimizer
from torchmetrics import MeanMetric

from tunelab.training.callbacks.log_steps import writes_logs_now
from tunelab.training.optim.optimizers import build_optimizer
from tunelab.training.optim.schedules import build_scheduler


class TrainingTask(L.LightningModule):
    """Base LightningModule: holds `net`, builds its optimizer and LR schedule from config.

    `optimizer` is a Hydra `_partial_` optimizer (everything but the parameters); `scheduler` is
    the `scheduler` config group: `name`, `interval` (step | epoch), `warmup`, `warmup_start`, `monitor`, and the
    schedule's own parameters.
    """

    kind: str  # "forecast" or "classify": the kind of data module the task can train on
    val_metric_names: tuple[str, ...]  # what validation logs: the names a monitor may watch
    optimized_metric: str  # what a sweep optimises when `optimized_metric` is null: the task's own

    def __init__(
        self, net: nn.Module, optimizer: Callable[..., Optimizer], scheduler: Mapping, bias_lr_scale: float = 1.0
    ) -> None:
        super().__init__()
        self.bias_lr_scale = bias_lr_scale  # lr multiplier of biases and norm parameters (airbench: 64)
        self.lr_scales: dict[str, float] = {}  # lr multiplier per part (`net.embed`), set by the finetune group
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_config = dict(scheduler)
        self.loss_sum = self.loss_count = None  # this epoch's training loss, summed on the device
        self.eval_loss = nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})

    def log_train_loss(self, loss: torch.Tensor, batch_size: int) -> None:
        """`train/loss` at the trainer's logging steps (also on the progress bar); `train/loss_epoch` at epoch end.

        Each `self.log` call costs about half a millisecond of Python (a tenth of a small LSTM's step
        on a CPU), so the step value is logged only on the steps Lightning writes to the loggers, and
        the epoch mean is summed on the device, without a host sync.
        """
        if self.loss_sum is None:
            self.loss_sum = torch.zeros((), device=loss.device)
            self.loss_count = 0
        self.loss_sum += loss.detach().float() * batch_size
        self.loss_count += batch_size
        if writes_logs_now(self.trainer):
            self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)

    def log_eval_loss(self, split: str, loss: torch.Tensor, batch_size: int) -> None:
        """`<split>/loss` as a metric weighted by batch size: under DDP the mean over every rank's batches,
        like the other metrics (a plain `self.log` of a tensor keeps rank 0's shard without `sync_dist`,
        and with it averages the ranks' means unweighted)."""
        metric = self.eval_loss[split]
        metric.update(loss.detach(), weight=batch_size)
        self.log(f"{split}/loss", metric, prog_bar=split == "val", batch_size=batch_size)

    def on_train_epoch_end(self) -> None:
        if self.loss_count:  # sync_dist: the mean over all DDP ranks, one all-reduce per epoch
            self.log("train/loss_epoch", self.loss_sum / self.loss_count, sync_dist=True)
        self.loss_sum = self.loss_count = None

    def set_learning_rate(self, lr: float) -> None:
        """Replace the optimizer's learning rate (used by the LR finder before fit)."""
        self.optimizer_factory = functools.partial(self.optimizer_factory, lr=lr)

    def configure_optimizers(self) -> dict | tuple[list, list]:
        optimizer = build_optimizer(self.optimizer_factory, self, self.bias_lr_scale, self.lr_scales)
        params = dict(self.scheduler_config)
        name, interval = params.pop("name"), params.pop("interval", "epoch")
        warmup, monitor = int(params.pop("warmup", 0)), params.pop("monitor", None)
        warmup_start = float(params.pop("warmup_start", 0.0))
        total = max(int(self.trainer.estimated_stepping_batches if interval == "step" else self.trainer.max_epochs), 1)
        schedulers = build_scheduler(optimizer, name, interval, warmup, total, monitor, params, warmup_start)
        return [optimizer], schedulers

    def log_figure(self, tag: str, figure: plt.Figure) -> None:
        """Send a matplotlib figure to every TensorBoard logger (an image), MLflow logger (artifact <tag>.png) and
        W&B logger (an image)."""
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(tag, figure, global_step=self.global_step)
            elif isinstance(logger, MLFlowLogger):
                logger.experiment.log_figure(logger.run_id, figure, f"{tag}.png")
            elif isinstance(logger, WandbLogger):
                logger.log_image(key=tag, images=[figure], step=self.global_step)
        plt.close(figure)
