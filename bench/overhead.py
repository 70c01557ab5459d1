"""What Lightning + Hydra + tunelab's callbacks cost over a hand-written PyTorch loop, on this CPU.

    python bench/overhead.py --data-dir data

Both sides train the same LSTM forecaster (model=lstm defaults) on the same ETTh1 S96 windows, with
the same seed, optimizer and number of optimizer steps: (a) a plain loop (zero_grad, forward, MSE,
backward, step), (b) the Trainer exactly as `python train.py` builds it (default callbacks, TensorBoard
logger, progress bar), with validation off so that only training steps are compared. Steps/s is taken
after a warm-up, repeats are interleaved, the median is reported, and the ratio (b)/(a) is printed
last. Also printed: the start-up time of `python train.py` up to its first training step.
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
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from omegaconf import open_dict

from tunelab.train import build_task, instantiate_each

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 20


def config(data_dir: Path, out: Path, steps: int):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[f"trainer.max_steps={steps}", "trainer.limit_val_batches=0", "early_stopping=none"],
        )
    with open_dict(cfg):
        cfg.paths.root_dir, cfg.paths.data_dir, cfg.paths.output_dir = str(ROOT), str(data_dir), str(out)
    return cfg


class StepClock(Callback):
    """Wall time from the end of the warm-up steps to the end of training."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == WARMUP:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self.start


def lightning_rate(cfg, steps: int) -> float:
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    model = build_task(cfg, datamodule)
    clock = StepClock()
    callbacks = [*instantiate_each(cfg.callbacks), clock]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=instantiate_each(cfg.logger))
    trainer.fit(model, datamodule=datamodule)
    return (steps - WARMUP) / clock.seconds


def plain_rate(cfg, steps: int) -> float:
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    net = build_task(cfg, datamodule).net
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.optimizer.lr)
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
    """`python train.py` from launch to the end of its first optimizer step (fast_dev_run, no logger)."""
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
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(args.data_dir.resolve(), Path(tmp), args.steps)
        rates: dict[str, list[float]] = {"plain PyTorch loop": [], "tunelab Trainer (train.py settings)": []}
        for _ in range(args.repeats):  # interleaved: machine noise hits both sides alike
            rates["plain PyTorch loop"].append(plain_rate(cfg, args.steps))
            rates["tunelab Trainer (train.py settings)"].append(lightning_rate(cfg, args.steps))
        startup = statistics.median(startup_seconds(args.data_dir.resolve(), Path(tmp)) for _ in range(3))
    print(f"\n{torch.get_num_threads()} threads, {args.steps} steps ({WARMUP} warm-up), median of {args.repeats}")
    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name, value in medians.items():
        print(f"{name:40s} {value:8.1f} steps/s")
    print(f"start-up of python train.py to its first step: {startup:.1f} s")
    ratio = medians["tunelab Trainer (train.py settings)"] / medians["plain PyTorch loop"]
    print(f"ratio Trainer / plain loop: {ratio:.3f}")


if __name__ == "__main__":
    main()
