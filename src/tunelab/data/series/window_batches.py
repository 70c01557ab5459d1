"""Forecast windows gathered by index from one series tensor on the training device."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tunelab.data.batching import IndexBatches
from tunelab.data.series.windows import WindowDataset, Windows


@dataclass
class WindowBatches(IndexBatches):
    """Batches of `Windows` (x, y, start) of a split's scaled series: x its `seq_len` input rows from each start,
    y the `horizon` output rows after them. The same windows as `WindowDataset` (`from_dataset`), built
    for a whole batch by one gather instead of one Python call per window.

    Augmentation (training only; 0 is off), drawn per window from the pass's seeded generator: a time
    `shift` of the start by up to that many rows, a random amplitude `scale` of input and target alike,
    Gaussian `jitter` on the inputs.
    """

    inputs: torch.Tensor  # (rows, input channels), scaled, on the device
    outputs: torch.Tensor  # (rows, output channels), the forecast columns of the same rows
    starts: torch.Tensor  # int64 first row of each window in `inputs`, on the device
    seq_len: int
    horizon: int
    batch_size: int
    jitter: float = 0.0
    scale: float = 0.0
    shift: int = 0
    first_row: int = 0  # the row of the whole series where `inputs` begins

    def __post_init__(self) -> None:
        self.input_steps = torch.arange(self.seq_len, device=self.device)
        self.output_steps = torch.arange(self.seq_len, self.seq_len + self.horizon, device=self.device)
        self.last_start = len(self.inputs) - self.seq_len - self.horizon

    @classmethod
    def from_dataset(cls, dataset: WindowDataset, device: torch.device, augment: bool, **batching) -> WindowBatches:
        """The windows of `dataset` on `device`; its augmentation settings apply when `augment`."""
        series = dataset.series.to(device)
        settings = {"jitter": dataset.jitter, "scale": dataset.scale, "shift": dataset.shift} if augment else {}
        return cls(
            inputs=series[:, dataset.input_cols],
            outputs=series[:, dataset.output_cols],
            starts=torch.as_tensor(dataset.starts, device=device),
            seq_len=dataset.seq_len,
            horizon=dataset.horizon,
            first_row=dataset.first_row,
            **settings,
            **batching,
        )

    @property
    def items(self) -> torch.Tensor:
        return self.starts

    def gather(self, idx: torch.Tensor, epoch: int, gen: torch.Generator) -> Windows:
        start = self.starts[idx]
        if self.shift:
            offset = torch.randint(-self.shift, self.shift + 1, start.shape, generator=gen, device=self.device)
            start = (start + offset).clamp_(0, self.last_start)
        x = self.inputs[start[:, None] + self.input_steps]  # (batch, seq_len, input channels)
        y = self.outputs[start[:, None] + self.output_steps]  # (batch, horizon, output channels)
        if self.scale:
            factor = 1.0 + self.scale * torch.randn(len(x), 1, 1, generator=gen, device=self.device)
            x, y = x * factor, y * factor
        if self.jitter:
            x = x + self.jitter * torch.randn(x.shape, generator=gen, device=self.device)
        return Windows(x, y, start + self.first_row)
