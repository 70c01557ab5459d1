"""Forecasting: regression loss on scaled windows, metrics on scaled data and in original units."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Optimizer
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from tunelab.data.series.windows import Windows
from tunelab.errors import UserError
from tunelab.tasks.base import TrainingTask

LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": F.mse_loss,
    "mae": F.l1_loss,
    "huber": F.huber_loss,
}


def _metrics() -> MetricCollection:
    return MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})


class ForecastTask(TrainingTask):
    """Train `net` to map input windows to the next `horizon` steps.

    `val/mse`, `test/mse` (and `mae`) are on the scaled data, as forecasting papers report them;
    `*/mse_orig`, `*/mae_orig` undo the scaler, so they are in the data's own units.

    Batches are `Windows` (x, y, start); the net is called as `net(x, start)`, `start` being each
    window's first row in the series (a `Forecaster` with a cycle reads its phase from it).
    """

    kind = "forecast"
    optimized_metric = "val/mse"

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Mapping,
        target_offset: torch.Tensor,
        target_scale: torch.Tensor,
        loss: str = "mse",
    ) -> None:
        super().__init__(net, optimizer, scheduler)
        if loss not in LOSSES:
            raise UserError(f"model.loss must be one of {', '.join(LOSSES)}; got '{loss}'")
        self.loss_fn = LOSSES[loss]
        # Buffers travel with the checkpoint, so a reloaded model reports the same original units.
        self.register_buffer("target_offset", target_offset.clone())
        self.register_buffer("target_scale", target_scale.clone())
        self.val_metrics, self.test_metrics = _metrics().clone(prefix="val/"), _metrics().clone(prefix="test/")
        self.val_orig = _metrics().clone(prefix="val/", postfix="_orig")
        self.test_orig = _metrics().clone(prefix="test/", postfix="_orig")
        self.val_metric_names = ("val/loss", *self.val_metrics.keys(), *self.val_orig.keys())

    def forward(self, x: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        return self.net(x, start)

    def unscale(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.target_scale + self.target_offset

    def training_step(self, batch: Windows, batch_idx: int) -> torch.Tensor:
        x, y, start = batch
        loss = self.loss_fn(self(x, start).float(), y)
        self.log_train_loss(loss, len(x))
        return loss

    def _evaluate(self, batch: Windows, split: str, scaled: MetricCollection, orig: MetricCollection) -> None:
        x, y, start = batch
        pred = self(x, start).float()
        self.log_eval_loss(split, self.loss_fn(pred, y), len(x))
        scaled.update(pred, y)
        orig.update(self.unscale(pred), self.unscale(y))
        self.log_dict(scaled, batch_size=len(x))
        self.log_dict(orig, batch_size=len(x))

    def validation_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics, self.val_orig)

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics, self.test_orig)
        if batch_idx == 0:  # a few windows for the forecast-vs-actual figure
            x, y, start = batch
            self.examples = (self.unscale(self(x[:3], start[:3]).float()).cpu(), self.unscale(y[:3]).cpu())

    def on_test_epoch_end(self) -> None:
        if getattr(self, "examples", None) is not None:
            self.log_figure("test/forecast", forecast_figure(*self.examples))
            self.examples = None

    def predict_step(self, batch: Windows, batch_idx: int) -> torch.Tensor:
        return self.unscale(self(batch.x, batch.start).float())


def forecast_figure(pred: torch.Tensor, actual: torch.Tensor) -> plt.Figure:
    """Forecast against actual values, in the data's units, for the first channel of a few test windows."""
    fig, axes = plt.subplots(len(pred), 1, figsize=(8, 2.2 * len(pred)), squeeze=False)
    for ax, p, a in zip(axes[:, 0], pred, actual, strict=True):
        ax.plot(a[:, 0].numpy(), label="actual", color="black")
        ax.plot(p[:, 0].numpy(), label="forecast", color="tab:orange")
        ax.set_xlabel("steps ahead")
    axes[0, 0].legend(loc="upper right")
    fig.tight_layout()
    return fig
