"""What every forecasting network shares: instance normalisation, channel independence, output columns."""

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

    `core(x)` maps (batch', seq_len, core_inputs) to (batch', horizon, core_outputs). With channel
    independence batch' = batch * n_channels and row `b * n_channels + c` holds channel c of window b,
    so a core can tell the channels apart (a learned channel embedding, say). Channel independence and
    `MS` exclude each other: the covariates would be read by nothing.
    """

    ci_only = False  # a net that is channel independent whatever model.net.channel_independent says
    # parts sized by the task (channels, horizon): fine-tuning starts them anew where their shapes differ
    output_modules: tuple[str, ...] = ("affine_weight", "affine_bias")

    def __init__(
        self,
        n_inputs: int,
        output_cols: Sequence[int],
        seq_len: int,
        horizon: int,
        norm: str = "none",
        channel_independent: bool = False,
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

    def core(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, channels = x.shape
        if self.norm == "last":
            shift, spread = x[:, -1:, :].detach(), None
            x = x - shift
        elif self.norm == "revin":
            shift = x.mean(dim=1, keepdim=True).detach()
            spread = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).detach()
            x = (x - shift) / spread * self.affine_weight + self.affine_bias

        if self.channel_independent:
            y = self.core(x.transpose(1, 2).reshape(batch * channels, -1, 1))
            y = y.reshape(batch, channels, self.horizon).transpose(1, 2)[..., self.output_cols]
        else:
            y = self.core(x)

        cols = self.output_cols
        if self.norm == "revin":
            y = (y - self.affine_bias[cols]) / (self.affine_weight[cols] + 1e-10) * spread[..., cols]
        if self.norm != "none":
            y = y + shift[..., cols]
        return y
