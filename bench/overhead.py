"""Training speed of the forecasting pipeline: tunelab's Trainer against plain PyTorch loops, on this CPU.

    python bench/overhead.py --data-dir data

Two settings, side by side in one run: `default` (what `python train.py` trains: one 64-unit LSTM,
ETTh1 S96, batch 32) and `m96` (the same LSTM reading all 7 ETTh1 channels jointly, M96, batch 256).
In each, all
rows train the same net on the same training windows with the same seed, optimizer and number of
optimizer steps:
  (a) a plain loop (zero_grad, forward, MSE, backward, step) fed by a per-sample Dataset + DataLoader
      (`WindowDataset`, shuffled, no workers: on 2 cores a worker only competes with the model), the
      way tutorials and reference implementations feed windows;
  (b) the same plain loop on windows gathered on the device (`WindowBatches`): the limit;
  (c) Lightning's floor: the same net in a minimal LightningModule (no logging), the device windows,
      a Trainer with every extra off (callbacks, logger, checkpointing, progress bar, model summary);
  (d) tunelab: the Trainer exactly as `python train.py` builds it (default callbacks, TensorBoard
      logger, progress bar), with validation off so that only training steps are compared.
Windows/s is taken after a warm-up, repeats are interleaved, the median is reported, and the ratios
d/a and d/b are printed last. One intra-op thread by default: the overhead is single-threaded Python,
and the idle second core absorbs the machine's noise. (The start-up of `python train.py` is
bench/startup.py's.)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from torch.utils.data import DataLoader

from tunelab.cli import compose_train
from tunelab.train import build_callbacks, build_data_and_task, instantiate_each
from tunelab.training.optim.optimizers import build_optimizer

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 20
PER_SAMPLE, PLAIN = "(a) plain loop, per-sample DataLoader", "(b) plain loop, device windows"
FLOOR, TUNELAB = "(c) Lightning floor (bare module)", "(d) tunelab Trainer (train.py)"
# m96 feeds the 7 channels to the LSTM as one joint input: a 256-row step where the loader's share is
# visible. With channel independence the step is 7x the compute and every loader is within a few percent.
SETTINGS = {
    "default": [],
    "m96": ["experiment=etth1_lstm_m96", "data.batch_size=256", "model.net.channel_independent=false"],
}


def config(setting: str, data_dir: Path, out: Path, steps: int):
    overrides = [*SETTINGS[setting], f"trainer.max_steps={steps}", "trainer.limit_val_batches=0", "early_stopping=none"]
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
        x, y, start = batch
        return F.mse_loss(self.net(x, start), y)

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


def plain_rate(cfg, steps: int, per_sample: bool = False) -> float:
    datamodule, model = setup(cfg)
    net = model.net
    optimizer = build_optimizer(instantiate(cfg.optimizer), net)
    loader = train_loader(datamodule, per_sample)
    done, start = 0, 0.0
    while done < steps:
        for x, y, first in loader:
            optimizer.zero_grad(set_to_none=True)
            F.mse_loss(net(x, first), y).backward()
            optimizer.step()
            done += 1
            if done == WARMUP:
                start = time.perf_counter()
            if done == steps:
                break
    return (steps - WARMUP) / (time.perf_counter() - start)


def train_loader(datamodule, per_sample: bool):
    """The per-sample DataLoader of tutorials (a), or tunelab's windows gathered on the device (b-d)."""
    if per_sample:
        return DataLoader(datamodule.datasets["train"], datamodule.batch_size, shuffle=True)
    return datamodule.train_dataloader()


def loader_ms(cfg, per_sample: bool) -> float:
    """Milliseconds per training batch of the loader alone: one epoch iterated, no model."""
    datamodule, _ = setup(cfg)
    loader = train_loader(datamodule, per_sample)
    started = time.perf_counter()
    n = sum(1 for _ in loader)
    return (time.perf_counter() - started) / n * 1000


def per_sample_rate(cfg, steps: int) -> float:
    return plain_rate(cfg, steps, per_sample=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding ETT-small/")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runners = {PER_SAMPLE: per_sample_rate, PLAIN: plain_rate, FLOOR: floor_rate, TUNELAB: tunelab_rate}
    rates: dict[tuple[str, str], list[float]] = {(s, name): [] for s in args.settings for name in runners}
    data_dir = args.data_dir.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # interleaved: machine noise hits every row alike
            for setting in args.settings:
                for name, run in runners.items():
                    cfg = config(setting, data_dir, Path(tmp) / str(repeat), args.steps)
                    rates[setting, name].append(run(cfg, args.steps) * cfg.data.batch_size)
    print(f"\n{args.threads} thread(s), {args.steps} steps ({WARMUP} warm-up), median of {args.repeats}")
    medians = {key: statistics.median(r) for key, r in rates.items()}
    for (setting, name), value in medians.items():
        print(f"{setting:8s} {name:40s} {value:9.0f} windows/s")
    for setting in args.settings:
        cfg = config(setting, data_dir, ROOT, args.steps)
        per_sample, device = loader_ms(cfg, per_sample=True), loader_ms(cfg, per_sample=False)
        print(f"{setting}: loader alone, per batch: per-sample {per_sample:.2f} ms, device windows {device:.2f} ms")
    for setting in args.settings:
        a, b, c, d = (medians[setting, name] for name in runners)
        print(f"{setting}: ratio d/a {d / a:.2f}, d/b {d / b:.3f}, c/b {c / b:.3f}")


if __name__ == "__main__":
    main()
