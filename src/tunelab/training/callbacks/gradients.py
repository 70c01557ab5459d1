"""Gradient health: the global gradient norm of every step, its curves, warnings, and adaptive clipping."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch.optim import Optimizer

from tunelab.errors import UserError
from tunelab.training.callbacks.log_steps import writes_logs_now


class GradientMonitor(Callback):
    """Measure the gradient norm before each optimizer step (after AMP unscaling, before clipping).

    - On the trainer's logging steps: logs `grad/norm` (global L2) and, with `per_layer`,
      `grad/norm/<parameter>`; warns when the largest norm since the last log exceeded `explode` or
      the smallest fell below `vanish`. The norms stay on the device between logs (no per-step sync).
    - `clip_percentile` (clipping=adaptive): AutoClip (Seetharaman et al., 2020): clip the global norm
      at that percentile of the last `window` norms, the same history the monitor keeps.
    - `clip_per_weight` (clipping=per_weight): Keras' `clipnorm`: scale each parameter tensor's gradient
      to an L2 norm of at most this, on its own, from the per-tensor norms measured here. Lightning
      has only global clipping (by norm or value).
    """

    def __init__(
        self,
        per_layer: bool = True,
        explode: float = 1e3,
        vanish: float = 1e-7,
        clip_percentile: float | None = None,
        window: int = 1000,
        clip_per_weight: float | None = None,
    ) -> None:
        if clip_percentile is not None and not 0 < clip_percentile <= 100:
            raise ValueError(f"clipping.percentile must be in (0, 100]; got {clip_percentile}")
        self.per_layer = per_layer
        self.explode, self.vanish = explode, vanish
        self.clip_percentile, self.window = clip_percentile, window
        self.clip_per_weight = clip_per_weight
        self.history: torch.Tensor | None = None  # ring buffer of global norms, on the device
        self.count = self.checked = 0  # norms seen; norms already checked against explode / vanish
        self.params: list[tuple[str, torch.nn.Parameter]] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # named_parameters() walks every submodule (metrics included): once per fit, not per step. Every
        # parameter, frozen or not: a part frozen now (finetune) may train from a later epoch on.
        self.params = list(pl_module.named_parameters())

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: Optimizer) -> None:
        named = [(n, p.grad) for n, p in self.params if p.requires_grad and p.grad is not None]
        if not named:
            return
        grads = [g for _, g in named]  # .grad holds no autograd history (no create_graph)
        norms = torch.stack(torch._foreach_norm(grads)).float()
        total = torch.linalg.vector_norm(norms)
        self._remember(total)
        if self.clip_percentile is not None:
            limit = torch.quantile(self.history[: min(self.count, self.window)], self.clip_percentile / 100)
            torch._foreach_mul_(grads, (limit / (total + 1e-6)).clamp(max=1.0))
        if self.clip_per_weight is not None:
            torch._foreach_mul_(grads, list((self.clip_per_weight / (norms + 1e-6)).clamp(max=1.0).unbind()))
        if writes_logs_now(trainer):
            metrics = {"grad/norm": total}
            if self.per_layer:
                metrics.update({f"grad/norm/{name}": norm for (name, _), norm in zip(named, norms, strict=True)})
            pl_module.log_dict(metrics, on_step=True, on_epoch=False)
            self._check(trainer)

    def state_dict(self) -> dict[str, Any]:
        """The norm history, saved in checkpoints: a resumed run clips at the percentiles the run would have."""
        history = None if self.history is None else self.history.cpu()
        return {"history": history, "count": self.count, "checked": self.checked, "window": self.window}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict["window"] != self.window:
            raise UserError(
                f"clipping.window: the checkpoint's AutoClip history holds {state_dict['window']} norms, "
                f"not {self.window}; resume with clipping.window={state_dict['window']}"
            )
        self.history, self.count, self.checked = state_dict["history"], state_dict["count"], state_dict["checked"]

    def _remember(self, total: torch.Tensor) -> None:
        if self.history is None:
            self.history = torch.zeros(self.window, device=total.device)
        self.history = self.history.to(total.device)  # loaded from a checkpoint onto the CPU
        self.history[self.count % self.window] = total
        self.count += 1

    def _check(self, trainer: L.Trainer) -> None:
        since = torch.arange(max(self.checked, self.count - self.window), self.count, device=self.history.device)
        recent = self.history[since % self.window]
        low, high = recent.min().item(), recent.max().item()  # the one host sync, once per log interval
        self.checked = self.count
        where = f"(epoch {trainer.current_epoch}, step {trainer.global_step})"
        if high > self.explode:
            rank_zero_warn(
                f"exploding gradients: global norm reached {high:.3g} > {self.explode:g} {where}; "
                "consider clipping=norm or a lower optimizer.lr"
            )
        if low < self.vanish:
            rank_zero_warn(f"vanishing gradients: global norm fell to {low:.3g} < {self.vanish:g} {where}")
