"""What Lightning + Hydra + tunelab's callbacks cost over a hand-written PyTorch loop, on this CPU.

    python bench/overhead.py --data-dir data

All rows train the same LSTM forecaster (model=lstm defaults) on the same ETTh1 S96 windows, with
the same seed, optimizer and number of optimizer steps:
  (a) a plain loop: zero_grad, forward, MSE, backward, step;
  (b) Lightning's floor: the same net in a minimal LightningModule (no logging), a Trainer with
      every extra off (callbacks, logger, checkpointing, progress bar, model summary);
  (c) tunelab: the Trainer exactly as `python train.py` builds it (default callbacks, TensorBoard
      logger, progress bar), with validation off so that only training steps are compared.
Steps/s is taken after a warm-up, repeats are interleaved, the median is reported, and the ratios
to (a) are printed last. One intra-op thread by default: the overhead is single-threaded Python,
and the idle second core absorbs the machine's noise. Also printed: the start-up time of
`python train.py` up to the end of its first training step.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback

from tunelab.cli import compose_train
from tunelab.train import build_callbacks, build_data_and_task, instantiate_each
from tunelab.training.optim import build_optimizer

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 20
PLAIN, FLOOR, TUNELAB = "plain PyTorch loop", "Lightning floor (bare module)", "tunelab Trainer (train.py)"


def config(data_dir: Path, out: Path, steps: int):
    overrides = [f"trainer.max_steps={steps}", "trainer.limit_val_batches=0", "early_stopping=none"]
    return compose_train(ROOT / "conf", overrides, root_dir=ROOT, data_dir=data_dir, output_dir=out)


class StepClock(Callback):
    """Wall time from the end of the warm-up steps to the end of training."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == WARMUP:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self.start


class BareModule(L.LightningModule):
    def __init__(self, net: torch.nn.Module, optimizer) -> None:
        super().__init__()
        self.net, self.optimizer_factory = net, optimizer

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        return build_optimizer(self.optimizer_factory, self.net)


def setup(cfg):
    """Seeded data module and task, the same for every row."""
    L.seed_everything(cfg.seed, verbose=False)
    return build_data_and_task(cfg)


def tunelab_rate(cfg, steps: int) -> float:
    datamodule, model = setup(cfg)
    clock = StepClock()
    loggers = instantiate_each(cfg.logger)
    trainer = instantiate(cfg.trainer, callbacks=[*build_callbacks(cfg, loggers), clock], logger=loggers)
    trainer.fit(model, datamodule=datamodule)
    return (steps - WARMUP) / clock.seconds


def floor_rate(cfg, steps: int) -> float:
    datamodule, model = setup(cfg)
    clock = StepClock()
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=steps,
        limit_val_batches=0,
        callbacks=[clock],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(BareModule(model.net, instantiate(cfg.optimizer)), datamodule=datamodule)
    return (steps - WARMUP) / clock.seconds


def plain_rate(cfg, steps: int) -> float:
    datamodule, model = setup(cfg)
    net = model.net
    optimizer = build_optimizer(instantiate(cfg.optimizer), net)
    done, start = 0, 0.0
    while done < steps:
        for x, y in datamodule.train_dataloader():
            optimizer.zero_grad(set_to_none=True)
            F.mse_loss(net(x), y).backward()
            optimizer.step()
            done += 1
            if done == WARMUP:
                start = time.perf_counter()
            if done == steps:
                break
    return (steps - WARMUP) / (time.perf_counter() - start)


def startup_seconds(data_dir: Path, out: Path) -> float:
    """`python train.py` from launch to the end of its first training step (fast_dev_run, no logger)."""
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "debug=fdr",
            "logger=none",
            f"paths.data_dir={data_dir}",
            f"paths.log_dir={out}",
            "trainer.limit_val_batches=0",
            "trainer.limit_test_batches=1",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding ETT-small/")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runners = {PLAIN: plain_rate, FLOOR: floor_rate, TUNELAB: tunelab_rate}
    rates: dict[str, list[float]] = {name: [] for name in runners}
    data_dir = args.data_dir.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # interleaved: machine noise hits every row alike
            for name, run in runners.items():
                rates[name].append(run(config(data_dir, Path(tmp) / str(repeat), args.steps), args.steps))
        startup = statistics.median(startup_seconds(data_dir, Path(tmp)) for _ in range(min(3, args.repeats)))
    print(f"\n{args.threads} thread(s), {args.steps} steps ({WARMUP} warm-up), median of {args.repeats}")
    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name, value in medians.items():
        print(f"{name:32s} {value:7.1f} steps/s  {1000 / value:6.2f} ms/step")
    print(f"start-up of python train.py to the end of its first step: {startup:.1f} s")
    print(f"ratio Lightning floor / plain loop: {medians[FLOOR] / medians[PLAIN]:.3f}")
    print(f"ratio tunelab Trainer / plain loop: {medians[TUNELAB] / medians[PLAIN]:.3f}")


if __name__ == "__main__":
    main()
