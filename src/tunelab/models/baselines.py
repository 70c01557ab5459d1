"""Baselines scored by the same task and metrics as the networks, so every table carries its own bars."""

from __future__ import annotations

import torch

from tunelab.errors import UserError
from tunelab.models.base import Forecaster


class Naive(Forecaster):
    """Repeat the last observed value over the whole horizon (no parameters, nothing to train)."""

    def __init__(self, **kwargs) -> None:
        kwargs.update(norm="none", channel_independent=False)
        super().__init__(**kwargs)

    def core(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1:, self.output_cols].repeat(1, self.horizon, 1)


class SeasonalNaive(Naive):
    """Repeat the last full season: y[t + h] = x[t + h - period * k], the smallest k >= 1 that fits."""

    def __init__(self, period: int = 24, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 < period <= self.seq_len:
            raise UserError(f"model.net.period must be in [1, data.seq_len={self.seq_len}]; got {period}")
        self.period = period

    def core(self, x: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(self.horizon, device=x.device)
        source = self.seq_len - self.period + steps % self.period
        return x[:, source][..., self.output_cols]


class LinearForecaster(Forecaster):
    """The Forecaster's linear path alone: one linear map from the window to the horizon, shared by every
    channel (NLinear with norm=last, and CycleNet/Linear with a cycle and norm=revin)."""

    ci_only = True
    has_core = False

    def __init__(self, **kwargs) -> None:
        kwargs.update(channel_independent=True, linear=True)
        super().__init__(**kwargs)
