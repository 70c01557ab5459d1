"""Build small Fashion-MNIST-shaped sets in the exact idx format of the official files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from tunelab.data.images.fashion_mnist import IMAGES, LABELS


def idx_bytes(array: np.ndarray) -> bytes:
    magic = IMAGES if array.ndim == 3 else LABELS
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_set(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = True, seed: int = 0) -> dict:
    """The four files of a small Fashion-MNIST-shaped set whose class shows as a bright row; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        images[np.arange(n), 2 * labels + 4] = 250
        arrays[f"{prefix}-images-idx3-ubyte"], arrays[f"{prefix}-labels-idx1-ubyte"] = images, labels
    folder.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        data = idx_bytes(array)
        (folder / (f"{stem}.gz" if gz else stem)).write_bytes(gzip.compress(data) if gz else data)
    return arrays
