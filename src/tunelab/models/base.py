"""What every forecasting network shares: instance normalisation, channel independence, output columns,
a learnable cycle and a linear path beside the core."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from tunelab.errors import UserError

NORMS = ("none", "last", "revin")


class Forecaster(nn.Module):
    """(batch, seq_len, n_inputs) -> (batch, horizon, len(output_cols)) around a subclass's `core`.

    - `norm`: `last` subtracts each window's last value per channel and adds it back to the forecast
      (NLinear); `revin` standardises each window per channel with a learnable affine map and undoes
      it on the output (RevIN, Kim et al., ICLR 2022). Both remove the level shift between the
      training and test months that otherwise dominates the error on series like ETT.
    - `channel_independent`: every channel is forecast as its own univariate series by one shared
      core (PatchTST's channel independence), so the core sees 1 channel in and 1 out.
    - `output_cols`: which input channels are forecast (all for `M`, the target for `S` and `MS`).
    - `cycle` (rows; 0: off): residual cycle forecasting (CycleNet, Lin et al., NeurIPS 2024). One
      learnable value per phase of a period of `cycle` rows and per channel, starting at 0, is
      subtracted from the window before everything else and added back to the forecast at the phases
      it covers, so the core forecasts what the cycle leaves. A window's phase is its first row in the
      whole series modulo `cycle` (`start`, from the data), so train, val and test windows read the same
      cycle at the same hours. It comes first, before the window normalisation: the cycle belongs to the
      series' clock, the level the norm removes to the window.
    - `linear`: a linear map from the window to the horizon over time, shared by every channel, beside
      the core; the forecast is their sum, so the core learns what the linear forecast misses (the
      linear and recurrent paths of xLSTM-Mixer, Kraus et al. 2024). With norm `last` the path alone
      is NLinear (`LinearForecaster` is exactly that).

    `core(x)` maps (batch', seq_len, core_inputs) to (batch', horizon, core_outputs). With channel
    independence batch' = batch * n_channels and row `b * n_channels + c` holds channel c of window b,
    so a core can tell the channels apart (a learned channel embedding, say). Channel independence and
    `MS` exclude each other: the covariates would be read by nothing.
    """

    ci_only = False  # a net that is channel independent whatever model.net.channel_independent says
    has_core = True  # False: the forecast is the linear path alone
    # parts sized by the task (channels, horizon): fine-tuning starts them anew where their shapes differ
    output_modules: tuple[str, ...] = ("affine_weight", "affine_bias", "cycle_values", "linear")

    def __init__(
        self,
        n_inputs: int,
        output_cols: Sequence[int],
        seq_len: int,
        horizon: int,
        norm: str = "none",
        channel_independent: bool = False,
        cycle: int = 0,
        linear: bool = False,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise UserError(f"model.net.norm must be one of {', '.join(NORMS)}; got '{norm}'")
        self.output_cols = list(output_cols)
        if channel_independent and len(self.output_cols) < n_inputs:  # MS: inputs the forecast would never read
            raise UserError(
                "data.features=MS with model.net.channel_independent=true forecasts the target from its own past "
                "only (the same as S): set model.net.channel_independent=false to use the other columns"
                + (f" ({type(self).__name__} is always channel independent: pick another model=)" * self.ci_only)
            )
        self.seq_len, self.horizon, self.norm, self.channel_independent = seq_len, horizon, norm, channel_independent
        self.n_channels = n_inputs
        self.core_inputs = 1 if channel_independent else n_inputs
        self.core_outputs = 1 if channel_independent else len(self.output_cols)
        if norm == "revin":
            self.affine_weight = nn.Parameter(torch.ones(n_inputs))
            self.affine_bias = nn.Parameter(torch.zeros(n_inputs))
        if isinstance(cycle, bool) or not isinstance(cycle, int) or cycle < 0:
            raise UserError(f"model.net.cycle must be a period in rows (0: no cycle); got {cycle!r}")
        self.cycle = cycle
        if cycle:
            self.cycle_values = nn.Parameter(torch.zeros(cycle, n_inputs))
        self.linear = nn.Linear(seq_len, horizon) if linear else None

    def core(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        """Forecast (batch, horizon, outputs) from windows x whose first rows in the series are `start`
        (batch,); `start` is needed with a cycle only."""
        if self.cycle:
            if start is None:
                raise ValueError("a net with model.net.cycle needs each window's first row: call net(x, start)")
            phase = (start[:, None] + torch.arange(self.seq_len + self.horizon, device=x.device)) % self.cycle
            cycle = self.cycle_values[phase]  # (batch, seq_len + horizon, channels)
            x = x - cycle[:, : self.seq_len]
        if self.norm == "last":
            shift, spread = x[:, -1:, :].detach(), None
            x = x - shift
        elif self.norm == "revin":
            shift = x.mean(dim=1, keepdim=True).detach()
            spread = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).detach()
            x = (x - shift) / spread * self.affine_weight + self.affine_bias

        y = self.backbone(x)

        cols = self.output_cols
        if self.norm == "revin":
            y = (y - self.affine_bias[cols]) / (self.affine_weight[cols] + 1e-10) * spread[..., cols]
        if self.norm != "none":
            y = y + shift[..., cols]
        if self.cycle:
            y = y + cycle[:, self.seq_len :, cols]
        return y

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """The normalised window to the normalised forecast: the core, the linear path, or their sum."""
        y = 0.0
        if self.has_core and self.channel_independent:
            batch, _, channels = x.shape
            y = self.core(x.transpose(1, 2).reshape(batch * channels, -1, 1))
            y = y.reshape(batch, channels, self.horizon).transpose(1, 2)[..., self.output_cols]
        elif self.has_core:
            y = self.core(x)
        if self.linear is not None:
            y = y + self.linear(x.transpose(1, 2)).transpose(1, 2)[..., self.output_cols]
        return y
