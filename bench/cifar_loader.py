"""Images per second: tunelab's device-side CIFAR pipeline against a per-sample Dataset + DataLoader.

    python bench/cifar_loader.py                 # CPU; add --device cuda on a GPU machine

Both sides produce the same thing: shuffled batches of 512 normalised float images with a random
crop (reflect padding 4), a random flip and an 8-pixel cutout, from uint8 data of CIFAR-10's shape
(random pixels: the speed does not depend on content). The per-sample side is the usual torchvision-
style Dataset whose __getitem__ augments one image, run with 0 and 2 worker processes. Repeats are
interleaved and the median taken; the ratio to the faster per-sample setting is printed last.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader, Dataset

from tunelab.data.images import image_augment as A
from tunelab.data.images.device_batches import Augment, DeviceBatches

MEAN, STD = torch.tensor([0.49, 0.48, 0.45]), torch.tensor([0.25, 0.24, 0.26])


class PerSample(Dataset):
    """One image at a time, as a torchvision transform pipeline would do it."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[i].float().div(255)
        x = torch.nn.functional.pad(x[None], (4, 4, 4, 4), mode="reflect")[0]
        dy, dx = torch.randint(0, 9, (2,)).tolist()
        x = x[:, dy : dy + 32, dx : dx + 32]
        if torch.rand(()) < 0.5:
            x = x.flip(-1)
        cy, cx = torch.randint(0, 32, (2,)).tolist()
        x = x.clone()
        x[:, max(cy - 4, 0) : cy + 4, max(cx - 4, 0) : cx + 4] = 0
        return (x - MEAN[:, None, None]) / STD[:, None, None], self.labels[i]


def rate(batches, device: torch.device, n_batches: int) -> float:
    """Images per second over `n_batches` batches, each consumed on `device`."""
    started, seen = time.perf_counter(), 0
    for i, (x, y) in enumerate(batches):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        seen += len(x)
        if i + 1 == n_batches:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, default=20, help="batches of 512 per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    images = torch.randint(0, 256, (50_000, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (50_000,))

    on_device = DeviceBatches(
        images.to(device),
        labels.to(device),
        512,
        MEAN,
        STD,
        augment=Augment(crop_pad=4, flip="random", cutout=8),
        shuffle=True,
        fill_last=True,
    )
    setups = {"device-side batches (tunelab)": lambda: on_device}
    for workers in (0, 2):
        setups[f"per-sample DataLoader, {workers} workers"] = lambda w=workers: DataLoader(
            PerSample(images, labels),
            batch_size=512,
            shuffle=True,
            num_workers=w,
            drop_last=True,
            pin_memory=device.type == "cuda",
            persistent_workers=False,
        )

    A.random_crop(torch.zeros(2, 3, 32, 32, device=device), 4, torch.Generator(device=device))  # warm-up
    results: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits every setup alike
        for name, make in setups.items():
            results[name].append(rate(make(), device, args.batches))

    print(
        f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
        f"{torch.get_num_threads()} threads, {args.batches} batches of 512, median of {args.repeats}"
    )
    medians = {name: statistics.median(r) for name, r in results.items()}
    for name, value in medians.items():
        print(f"{name:40s} {value:12,.0f} images/s")
    best_baseline = max(v for n, v in medians.items() if n.startswith("per-sample"))
    print(f"ratio device-side / best per-sample: {medians['device-side batches (tunelab)'] / best_baseline:.1f}x")


if __name__ == "__main__":
    main()
