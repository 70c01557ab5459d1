"""Build small archives in the exact format of the official cifar-10-python.tar.gz."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def separable_images(n: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """N x 3072 channel-major rows whose class shows as a colour and a stripe position (easy to learn)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, (n, 3, 32, 32)).astype(np.int64)
    for i, label in enumerate(labels):
        images[i, label % 3] += 120 + 10 * label
        images[i, :, 3 * label : 3 * label + 3, :] = 250
    return np.clip(images, 0, 255).astype(np.uint8).reshape(n, 3072), [int(v) for v in labels]


def batch_bytes(data: np.ndarray, labels: list[int], name: str) -> bytes:
    return pickle.dumps(
        {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))],
        },
        protocol=2,
    )


def add_file(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_archive(
    path: Path, per_batch: int = 200, n_test: int = 200, seed: int = 0, extra: dict[str, bytes] | None = None
) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Write `path`; return each batch's (rows, labels) so tests can compare what is read back."""
    batches = {f"data_batch_{i}": separable_images(per_batch, seed + i) for i in range(1, 6)}
    batches["test_batch"] = separable_images(n_test, seed + 99)
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py")
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        for name, (data, labels) in batches.items():
            add_file(tar, f"cifar-10-batches-py/{name}", batch_bytes(data, labels, name))
        meta = {b"label_names": [c.encode() for c in CLASSES], b"num_cases_per_batch": per_batch, b"num_vis": 3072}
        add_file(tar, "cifar-10-batches-py/batches.meta", pickle.dumps(meta, protocol=2))
        for name, payload in (extra or {}).items():
            add_file(tar, name, payload)
    return batches
