"""tunelab's `experiment=cifar10_airbench` against airbench's own training, on one GPU, in one job.

    pip install airbench==0.1.8 torchvision    # airbench's package imports torchvision
    python bench/cifar_gpu.py

Both sides train on the same synthetic data of CIFAR-10's shape (seeded random pixels and labels:
throughput does not depend on what the images show), for the same number of optimizer steps and
the same batch size (airbench94's 1024 images and ceil(48 x 9.9) = 476 steps by default):
  (a) airbench: `airbench.train94` from the PyPI package, unmodified (fp16 weights, channels_last);
  (b) tunelab: the Trainer as `python train.py experiment=cifar10_airbench callbacks=timed
      logger=none precision=bf16-mixed` builds it, without validation (airbench validates only when
      verbose). Extra Hydra overrides for this side go on the command line, e.g. model.compile=true.
A timed run covers building the net, the whitening init and every training step, between two CUDA
synchronisations. airbench's loader holds the training images on the GPU before its clock starts
(its timed call loads the test images); tunelab's one copy of them to the GPU falls inside its timed
fit. Each side first runs once untimed (CUDA context, cuDNN autotuning), then the timed runs
alternate. Printed: images/s and wall time of each (median), the ratio last. Without CUDA or
without the airbench package only tunelab's side runs (on the CPU this is a smoke run), and the
ratio line says why it is missing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import pickle
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import chdir
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate

from tunelab.cli import compose_train
from tunelab.train import build_callbacks, build_data_and_task

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
AIRBENCH_STEPS = math.ceil(50_000 // 1024 * 9.9)  # airbench94: 9.9 epochs of 48 full batches


def write_data(folder: Path, n_train: int, n_test: int, seed: int) -> None:
    """The same images in both formats: CIFAR-10's python batches (tunelab) and airbench's train.pt / test.pt."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (("train", n_train), ("test", n_test)):
        splits[split] = (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))
    batches_dir = folder / "cifar-10-batches-py"
    batches_dir.mkdir(parents=True)
    train_parts = zip(*(np.array_split(a, 5) for a in splits["train"]), strict=True)
    named = [(f"data_batch_{i}", part) for i, part in enumerate(train_parts, 1)] + [("test_batch", splits["test"])]
    for name, (images, labels) in named:  # official rows: channel-major 3 x 32 x 32
        rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
        batch = {b"data": rows, b"labels": labels.tolist()}
        (batches_dir / name).write_bytes(pickle.dumps(batch, protocol=2))
    classes = [f"class_{i}" for i in range(10)]
    for split, (images, labels) in splits.items():  # airbench's CifarLoader: HWC uint8 images
        torch.save(
            {"images": torch.from_numpy(images), "labels": torch.from_numpy(labels), "classes": classes},
            folder / f"{split}.pt",
        )


def tunelab_config(data_dir: Path, out: Path, batch: int, steps: int, overrides: list[str]):
    fixed = [
        "experiment=cifar10_airbench",
        "callbacks=timed",
        "logger=none",
        "precision=bf16-mixed",
        f"trainer.accelerator={'gpu' if CUDA else 'cpu'}",
        "data.val_size=0",  # airbench trains on every image
        "data.md5=null",
        "data.url=null",
        f"data.batch_size={batch}",
        f"optimizer.lr={1.5 * batch / 1024}",  # the recipe's lr is per 1024 images
        f"trainer.max_steps={steps}",
        "trainer.max_epochs=-1",  # max_steps decides
        "trainer.limit_val_batches=0",
    ]
    return compose_train(ROOT / "conf", fixed + overrides, root_dir=ROOT, data_dir=data_dir, output_dir=out)


def synchronize() -> None:
    if CUDA:
        torch.cuda.synchronize()


def tunelab_run(cfg, steps: int) -> float:
    """Seconds for one fit of `steps` optimizer steps, from the whitening init to the last step."""
    L.seed_everything(cfg.seed, verbose=False)
    datamodule, model = build_data_and_task(cfg)
    trainer = instantiate(cfg.trainer, callbacks=build_callbacks(cfg, []), logger=False)
    synchronize()
    started = time.perf_counter()
    trainer.fit(model, datamodule=datamodule)
    synchronize()
    assert trainer.global_step == steps, f"tunelab ran {trainer.global_step} steps, not {steps}"
    return time.perf_counter() - started


def airbench_runner(folder: Path, batch: int) -> tuple[Callable[[int], float] | None, str]:
    """A function timing airbench's train94 for a number of steps and its name, or None and why not."""
    if not CUDA:
        return None, "airbench needs CUDA (it moves its net with .cuda())"
    try:
        import airbench
    except Exception as err:  # ImportError, or torchvision failing to load against this torch
        return None, f"the airbench package does not import ({type(err).__name__}: {err})"
    with chdir(folder.parent):  # CifarLoader reads <cwd>/cifar10/{train,test}.pt
        loader = airbench.CifarLoader(
            folder.name, train=True, batch_size=batch, aug={"flip": True, "translate": 2}, altflip=True
        )

    def run(steps: int) -> float:
        epochs = (steps - 0.5) / len(loader)  # train94 runs ceil(len(loader) * epochs) steps
        with chdir(folder.parent):
            synchronize()
            started = time.perf_counter()
            airbench.train94(loader, epochs=epochs, verbose=False)
            synchronize()
        return time.perf_counter() - started

    return run, f"airbench {importlib.metadata.version('airbench')} train94"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for tunelab's side")
    parser.add_argument("--train-images", type=int, default=50_000)
    parser.add_argument("--test-images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=AIRBENCH_STEPS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True  # what airbench sets on import; set here so both sides get it
    warmup_steps = min(args.steps, 50)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cifar10"
        write_data(folder, args.train_images, args.test_images, seed=0)
        airbench_run, airbench_label = airbench_runner(folder, args.batch_size)

        def tunelab_steps(steps: int) -> float:
            cfg = tunelab_config(Path(tmp), Path(tmp) / "out", args.batch_size, steps, args.overrides)
            return tunelab_run(cfg, steps)

        tunelab_name = "tunelab experiment=cifar10_airbench callbacks=timed"
        runners = {tunelab_name: tunelab_steps}
        if airbench_run is not None:
            runners = {airbench_label: airbench_run, **runners}
        for run in runners.values():  # untimed: CUDA context, cuDNN autotuning, lazy imports
            run(warmup_steps)
        for _ in range(args.repeats):  # interleaved, so drifting clocks hit both sides alike
            for name, run in runners.items():
                times.setdefault(name, []).append(run(args.steps))
    device = torch.cuda.get_device_name() if CUDA else f"CPU ({os.cpu_count()} cores)"
    print(
        f"\n{device}; {args.train_images} training images of 32x32x3, batch {args.batch_size}, "
        f"{args.steps} steps, median of {args.repeats}"
    )
    rates = {}
    for name, seconds in times.items():
        wall = statistics.median(seconds)
        rates[name] = args.steps * args.batch_size / wall
        print(f"{name:56s} {rates[name]:10,.0f} images/s  {wall:7.2f} s")
    if airbench_run is None:
        print(f"ratio tunelab / airbench (images/s): not measured: {airbench_label}")
    else:
        print(f"ratio tunelab / airbench (images/s): {rates[tunelab_name] / rates[airbench_label]:.3f}")


if __name__ == "__main__":
    main()
