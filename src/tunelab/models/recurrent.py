"""Recurrent forecaster: per-timestep or segment-wise encoding, direct or parallel segment decoding."""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Sequence

import torch
from torch import nn

from tunelab.errors import UserError
from tunelab.models.base import Forecaster

log = logging.getLogger(__name__)

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
DECODERS = ("direct", "parallel")

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # an LSTM's state is (h, c); the others' is h


class RecurrentForecaster(Forecaster):
    """Recurrent layers read the window; the forecast comes out in one shot, never step by step.

    `hidden_sizes` lists one recurrent layer each (`[64, 32]` is a 64-unit layer feeding a 32-unit
    one), so layers may differ in width, as in the classic Keras stacks. Dropout sits between layers
    and before the output map. Normalisation and channel independence are the `Forecaster` options.

    Encoder (`seg_len`):
    - `0`: per timestep, the recurrence runs over all `seq_len` steps of the window.
    - `> 0`: segment-wise (SegRNN, Lin et al. 2023, arXiv 2308.11200). The window is cut into
      `seq_len / seg_len` segments; each is embedded by a linear layer and a ReLU to the first
      layer's width, and the recurrence runs over the segments. At L=720 with seg_len 24 that is 30
      recurrent steps instead of 720: long inputs become cheap, and the state has far fewer steps
      to carry information across.

    Decoder:
    - `direct`: one linear map from the final state to all `horizon` steps.
    - `parallel` (needs `seg_len`): SegRNN's parallel multi-step forecasting. Output segment j is
      predicted by running the same recurrent layers for one step from the encoder's final state,
      with a learned embedding of j as the input (half of it a learned embedding of the channel when
      `channel_embedding` is on, so one shared network knows which series it forecasts). All output
      segments of all windows go through the layers as one batch of length-1 sequences, a single
      recurrent call per layer, so no segment waits for another and errors cannot compound. A linear
      map turns each output state into `seg_len` values.
    """

    output_modules = (*Forecaster.output_modules, "head", "position", "channel")

    def __init__(
        self,
        cell: str = "lstm",
        hidden_sizes: Sequence[int] = (64,),
        dropout: float = 0.0,
        seg_len: int = 0,
        decoder: str = "direct",
        channel_embedding: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.seg_len, self.decoder = int(seg_len), decoder
        self._check(cell, hidden_sizes, dropout, channel_embedding)
        widths = [int(h) for h in hidden_sizes]
        if self.seg_len:
            self.embed = nn.Sequential(nn.Linear(self.seg_len * self.core_inputs, widths[0]), nn.ReLU())
            sizes = [widths[0], *widths]
        else:
            sizes = [self.core_inputs, *widths]
        self.layers = nn.ModuleList(CELLS[cell](a, b, batch_first=True) for a, b in itertools.pairwise(sizes))
        self.dropout = nn.Dropout(dropout)
        if decoder == "parallel":
            channel_width = widths[0] // 2 if channel_embedding else 0
            # N(0, 1) initial embeddings: inputs on the scale of the ReLU segment embeddings
            self.position = nn.Parameter(torch.randn(self.horizon // self.seg_len, widths[0] - channel_width))
            self.channel = nn.Parameter(torch.randn(self.n_channels, channel_width)) if channel_embedding else None
            self.head = nn.Linear(widths[-1], self.seg_len * self.core_outputs)
        else:
            self.head = nn.Linear(widths[-1], self.horizon * self.core_outputs)

    def _check(self, cell: str, hidden_sizes: Sequence[int], dropout: float, channel_embedding: bool) -> None:
        """One line per impossible setting, naming the key."""
        if cell not in CELLS:
            raise UserError(f"model.net.cell must be one of {', '.join(CELLS)}; got '{cell}'")
        if not hidden_sizes or any(int(h) <= 0 for h in hidden_sizes):
            raise UserError(f"model.net.hidden_sizes must be a non-empty list of positive sizes; got {hidden_sizes}")
        if not 0.0 <= dropout < 1.0:
            raise UserError(f"model.net.dropout must be in [0, 1); got {dropout}")
        if self.decoder not in DECODERS:
            raise UserError(f"model.net.decoder must be one of {', '.join(DECODERS)}; got '{self.decoder}'")
        if self.seg_len < 0:
            raise UserError(f"model.net.seg_len must be >= 0 (0: per-timestep recurrence); got {self.seg_len}")
        if self.seg_len and self.seq_len % self.seg_len:
            raise UserError(f"model.net.seg_len={self.seg_len} must divide data.seq_len={self.seq_len}")
        if self.decoder == "parallel" and not self.seg_len:
            raise UserError("model.net.decoder=parallel predicts segments: set model.net.seg_len > 0")
        if self.decoder == "parallel" and self.horizon % self.seg_len:
            raise UserError(f"model.net.seg_len={self.seg_len} must divide data.horizon={self.horizon}")
        if channel_embedding and (self.decoder != "parallel" or self.core_inputs != 1):
            raise UserError(
                "model.net.channel_embedding needs model.net.decoder=parallel and model.net.channel_independent=true"
            )

    def core(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.shape[0]
        if self.seg_len:  # (rows, L, C) -> (rows, L / seg_len, seg_len * C), each segment embedded
            x = self.embed(x.reshape(rows, -1, self.seg_len * self.core_inputs))
        x, states = self._run_layers(x)
        if self.decoder == "parallel":
            return self._decode_segments(states, rows)
        return self.head(self.dropout(x[:, -1])).view(rows, self.horizon, self.core_outputs)

    def _run_layers(self, x: torch.Tensor, initial: list[State] | None = None) -> tuple[torch.Tensor, list[State]]:
        """The recurrent stack, dropout between layers, from `initial` states (zeros when None)."""
        states = []
        for i, layer in enumerate(self.layers):
            if i:
                x = self.dropout(x)
            x, state = run_layer(layer, x, None if initial is None else initial[i])
            states.append(state)
        return x, states

    def _decode_segments(self, states: list[State], rows: int) -> torch.Tensor:
        """All output segments at once: rows * n_out length-1 sequences, one recurrent call per layer."""
        n_out = self.position.shape[0]
        if self.channel is None:
            queries = self.position.expand(rows, -1, -1)  # (rows, n_out, width)
        else:  # row b * n_channels + c is channel c (see Forecaster)
            per_channel = torch.cat(
                [self.position.expand(self.n_channels, -1, -1), self.channel.unsqueeze(1).expand(-1, n_out, -1)],
                dim=-1,
            )
            queries = per_channel.repeat(rows // self.n_channels, 1, 1)
        y, _ = self._run_layers(queries.reshape(rows * n_out, 1, -1), [_repeat_state(s, n_out) for s in states])
        # (rows * n_out, seg_len * outputs) in row-major order is (rows, horizon, outputs)
        return self.head(self.dropout(y[:, 0])).view(rows, self.horizon, self.core_outputs)


def run_layer(layer: nn.RNNBase, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
    """`layer(x, state)`, in float32 where this CPU has no reduced-precision kernel for it under autocast."""
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu") and isinstance(layer, nn.LSTM):
        dtype = torch.get_autocast_dtype("cpu")
        if not cpu_lstm_autocasts(dtype):
            with torch.autocast("cpu", enabled=False):
                state = None if state is None else tuple(s.float() for s in state)
                return layer(x.float(), state)
    return layer(x, state)


@functools.cache
def cpu_lstm_autocasts(dtype: torch.dtype) -> bool:
    """Whether oneDNN runs an LSTM under CPU autocast to `dtype` on this machine.

    It does not on CPUs without AVX-512 (an AVX2-only AMD EPYC here: "could not create a primitive
    descriptor for the LSTM forward propagation primitive"), while GRU and RNN cells run; there the
    LSTM layers of a mixed-precision run compute in float32, said once.
    """
    try:
        with torch.autocast("cpu", dtype=dtype):
            nn.LSTM(1, 1, batch_first=True)(torch.zeros(1, 2, 1))
    except RuntimeError:
        log.warning(f"this CPU has no {dtype} LSTM kernel: LSTM layers run in float32 under mixed precision")
        return False
    return True


def _repeat_state(state: State, times: int) -> State:
    """Each window's final state once per output segment: (layers, rows, H) -> (layers, rows * times, H)."""
    if isinstance(state, tuple):
        return tuple(s.repeat_interleave(times, dim=1) for s in state)
    return state.repeat_interleave(times, dim=1)
