"""Stacked recurrent forecaster with a direct multi-horizon linear head."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from tunelab.errors import UserError
from tunelab.models.base import Forecaster

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentForecaster(Forecaster):
    """Recurrent layers read the window; one linear layer emits all `horizon` steps at once.

    `hidden_sizes` lists one recurrent layer each (`[64, 32]` is a 64-unit layer feeding a 32-unit
    one), so layers may differ in width, as in the classic Keras stacks. Dropout sits between layers.
    Direct multi-step output avoids the error compounding of step-by-step rollouts. Normalisation and
    channel independence are the `Forecaster` options.
    """

    def __init__(self, cell: str = "lstm", hidden_sizes: Sequence[int] = (64,), dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise UserError(f"model.net.cell must be one of {', '.join(CELLS)}; got '{cell}'")
        if not hidden_sizes or any(int(h) <= 0 for h in hidden_sizes):
            raise UserError(f"model.net.hidden_sizes must be a non-empty list of positive sizes; got {hidden_sizes}")
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"model.net.dropout must be in [0, 1); got {dropout}")
        sizes = [self.core_inputs, *map(int, hidden_sizes)]
        self.layers = nn.ModuleList(CELLS[cell](a, b, batch_first=True) for a, b in itertools.pairwise(sizes))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(sizes[-1], self.horizon * self.core_outputs)

    def core(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            if i:
                x = self.dropout(x)
            x, _ = layer(x)
        last = self.dropout(x[:, -1])
        return self.head(last).view(-1, self.horizon, self.core_outputs)
