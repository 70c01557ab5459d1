"""Lookahead (Zhang et al., 2019) as airbench uses it: a slow copy of the weights that the fast ones restart from."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class Lookahead(Callback):
    """Every `every` optimizer steps: slow <- slow + (1 - decay) * (fast - slow), then fast <- slow.

    With `ramp`, the decay grows as decay * (step / total steps)^3, as in airbench: early on the
    fast weights move freely, late in the run the slow copy averages strongly.

    Covers the trainable parameters and the floating-point buffers (batch-norm statistics). The
    last training step always synchronises, so the checkpoint written after it, and the test,
    use the slow weights. Both updates are fused foreach kernels on the device: no host sync.
    """

    def __init__(self, every: int = 5, decay: float = 0.95**5, ramp: bool = False) -> None:
        if every < 1 or not 0.0 <= decay < 1.0:
            raise ValueError(f"lookahead needs every >= 1 and decay in [0, 1); got {every}, {decay}")
        self.every, self.decay, self.ramp = every, decay, ramp
        self.slow: list[torch.Tensor] | None = None
        self.total_steps = 0  # optimizer steps in the whole run, read once at the start

    @staticmethod
    def tracked(pl_module: L.LightningModule) -> list[torch.Tensor]:
        # every parameter, frozen ones too (unchanged, so a no-op): one that finetune.unfreeze_at_epoch
        # unfreezes mid-fit keeps the list's length
        params = [p.data for p in pl_module.parameters()]
        return params + [b for b in pl_module.buffers() if b.is_floating_point()]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.total_steps = max(trainer.estimated_stepping_batches, 1)  # max_steps or epochs, whichever ends first
        fast = self.tracked(pl_module)
        if self.slow is None or len(self.slow) != len(fast):  # a fresh run (a resumed one loaded its copy)
            self.slow = [t.detach().clone() for t in fast]
        else:
            self.slow = [s.to(t.device) for s, t in zip(self.slow, fast, strict=True)]

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % self.every == 0 or trainer.global_step >= self.total_steps:
            fast = self.tracked(pl_module)
            decay = self.decay
            if self.ramp:
                decay *= min(trainer.global_step / self.total_steps, 1.0) ** 3
            torch._foreach_lerp_(self.slow, fast, 1.0 - decay)
            torch._foreach_copy_(fast, self.slow)

    def state_dict(self) -> dict[str, Any]:
        return {"slow": [t.cpu() for t in self.slow] if self.slow is not None else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.slow = state_dict["slow"]
