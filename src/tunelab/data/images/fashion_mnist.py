"""Fashion-MNIST's four idx files, found locally or downloaded, checked byte for byte and parsed strictly.

Where the files come from, first hit wins: `<root>/` (gzip or plain, as the official or Debian names),
Debian's `dataset-fashion-mnist` package (`/usr/share/datasets/fashion-mnist/`), then the official
download. Debian recompresses the files, so the checksums are those of the decompressed bytes, which
every source shares. The idx format (LeCun's MNIST format): a big-endian header of magic 0x0803
(images: count, rows, cols) or 0x0801 (labels: count), then uint8 data, nothing after it.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch

from tunelab.data.download import download
from tunelab.data.images.base import ImageDataModule
from tunelab.errors import UserError

URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# file stem: (md5 of the decompressed bytes, md5 of the official .gz)
FILES = {
    "train-images-idx3-ubyte": ("f4a8712d7a061bf5bd6d2ca38dc4d50a", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train-labels-idx1-ubyte": ("9018921c3c673c538a1fc5bad174d6f9", "25c81989df183df01b3e8a0aad5dffbe"),
    "t10k-images-idx3-ubyte": ("8181f5470baa50b63fa0f6fddb340f0a", "bef4ecab320f06d8554ea6380940ec79"),
    "t10k-labels-idx1-ubyte": ("15d484375f8d13e6eb1aabb0c3f46965", "bb300cfdad3c16e7a12a480ee83cd310"),
}
IMAGES, LABELS = 0x0803, 0x0801  # idx magic numbers: unsigned bytes, 3 dimensions / 1 dimension


def load_fashion_mnist(
    root: Path, checksums: bool = True, url: str | None = URL, debian_dir: Path | None = DEBIAN_DIR
) -> dict:
    """Train and test images (N x 1 x 28 x 28 uint8), labels (N int64) and class names.

    `checksums` false skips the md5 of the decompressed bytes (a home-made set); `url` None forbids
    the download.
    """
    arrays = {}
    for stem, (md5, gz_md5) in FILES.items():
        path = find(stem, [Path(root), *([Path(debian_dir)] if debian_dir else [])])
        if path is None:
            if url is None:
                raise UserError(f"data.root: no {stem}(.gz) in {root} or {debian_dir}, and data.url is null")
            path = download(f"{url}/{stem}.gz", Path(root) / f"{stem}.gz", gz_md5, algorithm="md5")
        arrays[stem] = read_idx(path, IMAGES if "images" in stem else LABELS, md5 if checksums else None)
    data = {"classes": list(CLASSES)}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = arrays[f"{prefix}-images-idx3-ubyte"], arrays[f"{prefix}-labels-idx1-ubyte"]
        if len(images) != len(labels):
            raise UserError(f"{prefix}-labels-idx1-ubyte: {len(labels)} labels for {len(images)} images")
        if labels.size and labels.max() >= len(CLASSES):
            raise UserError(f"{prefix}-labels-idx1-ubyte: label {labels.max()} is not a class (0-{len(CLASSES) - 1})")
        data[f"{split}_images"] = torch.from_numpy(images.copy()).unsqueeze(1)
        data[f"{split}_labels"] = torch.from_numpy(labels.astype(np.int64))
    return data


def find(stem: str, folders: list[Path]) -> Path | None:
    """The first of `<folder>/<stem>.gz` or `<folder>/<stem>` that exists, folder by folder."""
    for folder in folders:
        for name in (f"{stem}.gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


def read_idx(path: Path, magic: int, md5: str | None = None) -> np.ndarray:
    """The uint8 array in an idx file (gzip or plain); UserError naming the file for anything malformed."""
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise UserError(f"{path}: not a readable idx file ({err})") from err
    if md5 is not None and (actual := hashlib.md5(data).hexdigest()) != md5:
        raise UserError(f"{path}: md5 of the decompressed bytes is {actual}, expected {md5} (a damaged file?)")
    dims = 3 if magic == IMAGES else 1
    header = 4 + 4 * dims
    if len(data) < header:
        raise UserError(f"{path}: {len(data)} bytes, too short for an idx header of {header}")
    if int.from_bytes(data[:4], "big") != magic:
        found = data[:4].hex()
        raise UserError(
            f"{path}: not an idx {'image' if dims == 3 else 'label'} file (magic {found}, expected {magic:08x})"
        )
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    if dims == 3 and (shape[1] == 0 or shape[2] == 0):
        raise UserError(f"{path}: images of {shape[1]} x {shape[2]} pixels")
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise UserError(f"{path}: {len(data)} bytes, but its header {shape} needs {expected} (truncated or padded)")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


class FashionMNISTDataModule(ImageDataModule):
    """Fashion-MNIST (60,000 training and 10,000 test images, 28 x 28 grayscale) from its four idx files."""

    def __init__(
        self,
        root: str,
        checksums: bool = True,
        url: str | None = URL,
        debian_dir: str | None = str(DEBIAN_DIR),
        **settings,
    ) -> None:
        super().__init__(root, **settings)
        self.checksums, self.url = checksums, url
        self.debian_dir = Path(debian_dir) if debian_dir else None

    def load(self) -> dict:
        return load_fashion_mnist(self.root, self.checksums, self.url, self.debian_dir)
