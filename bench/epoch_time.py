"""Training-epoch time of the segment-wise recurrent recipe against per-timestep recurrence, by input length.

    python bench/epoch_time.py --data-dir data                  # L = 96, 336, 720 on ETTh1 M96

Rows, each built from conf/ exactly as `python train.py` builds the model and data:
  (a) segment: `experiment=etth1_m96_hand` (512-unit GRU over 24-step segments, parallel decoding, batch 256);
  (b) per-timestep: `experiment=etth1_lstm_m96` (64-unit LSTM over every step, batch 32);
  (c) segment at the same size: (b) with `seg_len=24`, parallel decoding and a channel embedding, so
      only the recurrence differs from (b);
  (d) optionally (`--same-width`) the segment recipe with `seg_len=0`: the same 512-unit GRU run over
      every timestep, which shows what the segments themselves save (slow: L = 96 only).
For each input length L (`data.seq_len`), a few training steps (forward, MSE, backward, Adam step) are
timed after a warm-up step, interleaved between the rows and repeated; the median step time times
the number of training batches per epoch is the epoch time. Validation is not included. Last come
the ratios per-timestep / segment at each L and the target lines: segment at the longest L against
the per-timestep LSTM at L=96.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision

from tunelab.cli import compose_train
from tunelab.train import build_data_and_task
from tunelab.training.optim.optimizers import build_optimizer

ROOT = Path(__file__).resolve().parents[1]
SEGMENT = "segment GRU-512 (etth1_m96_hand)"
STEP = "per-timestep LSTM-64 (etth1_lstm_m96)"
SMALL = "segment LSTM-64 (etth1_lstm_m96, seg_len=24)"
SAME_WIDTH = "per-timestep GRU-512"
SEGMENTS = ["model.net.seg_len=24", "model.net.decoder=parallel", "model.net.channel_embedding=true"]
PER_TIMESTEP = ["model.net.seg_len=0", "model.net.decoder=direct", "model.net.channel_embedding=false"]
RECIPES = {
    SEGMENT: ["experiment=etth1_m96_hand"],
    STEP: ["experiment=etth1_lstm_m96"],
    SMALL: ["experiment=etth1_lstm_m96", *SEGMENTS],
    SAME_WIDTH: ["experiment=etth1_m96_hand", *PER_TIMESTEP],
}


class Stepper:
    """One row's model, optimizer and a fixed set of training batches."""

    def __init__(
        self, overrides: list[str], seq_len: int, data_dir: Path, out: Path, batches: int, precision: str = "32-true"
    ) -> None:
        # the Trainer's own precision plugin: bf16-mixed on a CPU is its torch.autocast("cpu", torch.bfloat16)
        self.precision = MixedPrecision(precision, "cpu") if precision.endswith("-mixed") else Precision()
        cfg = compose_train(
            ROOT / "conf", [*overrides, f"data.seq_len={seq_len}"], root_dir=ROOT, data_dir=data_dir, output_dir=out
        )
        L.seed_everything(cfg.seed, verbose=False)
        datamodule, self.task = build_data_and_task(cfg)
        loader = datamodule.train_dataloader()
        self.per_epoch = len(loader)
        self.batches = [batch for _, batch in zip(range(batches), loader, strict=False)]
        self.optimizer = build_optimizer(self.task.optimizer_factory, self.task)
        self.step(self.batches[0])  # warm-up: allocations, first-call dispatch

    def step(self, batch) -> None:
        x, y, start = batch
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.forward_context():
            loss = self.task.loss_fn(self.task(x, start), y)
        loss.backward()
        self.optimizer.step()

    def seconds_per_step(self) -> float:
        started = time.perf_counter()
        for batch in self.batches:
            self.step(batch)
        return (time.perf_counter() - started) / len(self.batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding ETT-small/")
    parser.add_argument("--lengths", nargs="+", type=int, default=[96, 336, 720], help="input lengths L")
    parser.add_argument("--batches", type=int, default=3, help="timed training steps per row and repeat")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--same-width", action="store_true", help="also the 512-unit GRU per timestep, at L=96")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    epoch: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seq_len in args.lengths:
            names = [SEGMENT, STEP, SMALL] + ([SAME_WIDTH] if args.same_width and seq_len == 96 else [])
            steppers = {
                name: Stepper(RECIPES[name], seq_len, args.data_dir.resolve(), Path(tmp), args.batches)
                for name in names
            }
            times: dict[str, list[float]] = {name: [] for name in names}
            for _ in range(args.repeats):
                for name, stepper in steppers.items():
                    times[name].append(stepper.seconds_per_step())
            for name, stepper in steppers.items():
                step = statistics.median(times[name])
                epoch[name, seq_len] = step * stepper.per_epoch
                print(
                    f"L={seq_len:4d} {name:40s} {step * 1000:8.1f} ms/step x {stepper.per_epoch:4d} steps "
                    f"= {epoch[name, seq_len]:7.1f} s/epoch",
                    flush=True,
                )

    print(f"\ntorch threads: {torch.get_num_threads()}")
    for seq_len in args.lengths:
        for name in (SEGMENT, SMALL):
            print(f"L={seq_len}: per-timestep LSTM-64 / {name}: {epoch[STEP, seq_len] / epoch[name, seq_len]:.2f}")
    longest = max(args.lengths)
    if 96 in args.lengths:
        for name in (SEGMENT, SMALL):
            ratio = epoch[name, longest] / epoch[STEP, 96]
            verdict = "no slower" if ratio <= 1 else "slower"
            print(f"{name} at L={longest} / per-timestep LSTM-64 at L=96: {ratio:.2f} ({verdict})")


if __name__ == "__main__":
    main()
