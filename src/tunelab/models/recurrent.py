"""Stacked recurrent forecaster with a direct multi-horizon linear head."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from tunelab.errors import UserError

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentForecaster(nn.Module):
    """(batch, seq_len, n_inputs) -> (batch, horizon, n_outputs).

    `hidden_sizes` lists one recurrent layer each (`[64, 32]` is a 64-unit layer feeding a 32-unit
    one), so layers may differ in width, as in the classic Keras stacks. Dropout sits between layers.
    The last hidden state feeds one linear layer that emits all `horizon` steps at once (direct
    multi-step output: no error compounding as in step-by-step rollouts).
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        horizon: int,
        cell: str = "lstm",
        hidden_sizes: Sequence[int] = (64,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise UserError(f"model.net.cell must be one of {', '.join(CELLS)}; got '{cell}'")
        if not hidden_sizes or any(int(h) <= 0 for h in hidden_sizes):
            raise UserError(f"model.net.hidden_sizes must be a non-empty list of positive sizes; got {hidden_sizes}")
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"model.net.dropout must be in [0, 1); got {dropout}")
        sizes = [n_inputs, *map(int, hidden_sizes)]
        self.layers = nn.ModuleList(CELLS[cell](a, b, batch_first=True) for a, b in itertools.pairwise(sizes))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(sizes[-1], horizon * n_outputs)
        self.horizon, self.n_outputs = horizon, n_outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            if i:
                x = self.dropout(x)
            x, _ = layer(x)
        last = self.dropout(x[:, -1])
        return self.head(last).view(-1, self.horizon, self.n_outputs)
