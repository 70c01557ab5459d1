"""The official CIFAR-10 archive, read safely: verified, extracted without escapes, unpickled without code.

`cifar-10-python.tar.gz` holds `cifar-10-batches-py/` with five training batches, a test batch and
`batches.meta`, each a Python pickle of a dict with byte keys. Unpickling runs whatever the file says,
so these files go through `RestrictedUnpickler`, which admits only builtin containers and numpy's array
reconstruction: a crafted batch that calls any other function is refused before anything runs.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from tunelab.data.download import download, file_digest
from tunelab.errors import WRITE_ERRNOS, UserError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]

# What a CIFAR batch may reference: numpy's array reconstruction and a few builtin containers.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes under protocol 2: encode(str, "latin1"), nothing else
    *((module, name) for module in ("builtins", "__builtin__") for name in ("set", "frozenset", "bytearray")),
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in `_ALLOWED`; anything else raises UserError."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise UserError(f"refused to unpickle {module}.{name}: not allowed in a CIFAR batch file")
        return super().find_class(module, name)


def load_batch(path: Path) -> dict:
    """Unpickle one batch file through the restricted unpickler (byte strings stay bytes)."""
    try:
        with open(path, "rb") as f:
            batch = RestrictedUnpickler(f, encoding="bytes").load()
    except UserError as err:
        raise UserError(f"{path}: {err}") from err
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise UserError(f"{path} is not a readable CIFAR batch ({err})") from err
    if not isinstance(batch, dict):
        raise UserError(f"{path} is not a CIFAR batch: it holds a {type(batch).__name__}, not a dict")
    return batch


def safe_extract(archive: Path, target: Path) -> Path:
    """Extract a tar archive into `target`, refusing links, devices and members that would land outside.

    Every member is checked before anything is written; the extraction goes to a temporary folder
    that is renamed into place, so a refused or broken archive leaves nothing behind.
    """
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            root = target.resolve()
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise UserError(f"{archive}: refused member {member.name!r}: links and devices are not allowed")
                dest = (root / member.name).resolve()
                if member.name.startswith("/") or not dest.is_relative_to(root):
                    raise UserError(f"{archive}: refused member {member.name!r}: it would land outside {target}")
            with tempfile.TemporaryDirectory(dir=target, prefix=".extract-") as tmp:
                tar.extractall(tmp, members=members, filter="data")
                extracted = Path(tmp) / FOLDER
                if not extracted.is_dir():
                    raise UserError(f"{archive} has no {FOLDER}/ folder: not the CIFAR-10 python archive")
                final = target / FOLDER
                if final.exists():  # a previous extraction: replace it whole
                    os.replace(final, Path(tmp) / "old")
                os.replace(extracted, final)
    except (tarfile.TarError, EOFError, OSError) as err:  # gzip reports a corrupt stream as OSError
        if isinstance(err, OSError) and err.errno in WRITE_ERRNOS:
            raise  # the disk is full or read-only: not the archive's fault
        raise UserError(f"{archive} is not a readable tar.gz archive ({err})") from err
    return final


def _images(batch: dict, path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except KeyError as err:
        raise UserError(f"{path} lacks the key {err.args[0]!r} of a CIFAR batch") from err
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise UserError(f"{path}: expected N x 3072 pixel rows and N labels; got {data.shape} and {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise UserError(f"{path}: labels must be 0..9")
    # rows are channel-major: 1024 red, then green, then blue values, each row-major 32 x 32
    return data.reshape(-1, 3, 32, 32), labels


def parse_folder(folder: Path) -> dict:
    """Read the extracted batch files into uint8 image tensors (N, 3, 32, 32) and int64 labels."""
    parts = {}
    for split, names in (("train", TRAIN_BATCHES), ("test", ["test_batch"])):
        images, labels = [], []
        for name in names:
            path = folder / name
            if not path.is_file():
                raise UserError(f"CIFAR-10 batch file missing: {path}")
            x, y = _images(load_batch(path), path)
            images.append(x)
            labels.append(y)
        parts[f"{split}_images"] = torch.from_numpy(np.concatenate(images))
        parts[f"{split}_labels"] = torch.from_numpy(np.concatenate(labels))
    meta = load_batch(folder / "batches.meta") if (folder / "batches.meta").is_file() else {}
    names = meta.get(b"label_names", [f"class_{i}".encode() for i in range(10)])
    parts["classes"] = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    return parts


def load_cifar10(
    root: Path, archive_name: str = "cifar-10-python.tar.gz", md5: str | None = MD5, url: str | None = URL
) -> dict:
    """CIFAR-10 as tensors, from the parsed cache, the extracted folder, the archive, or a download.

    The cache (`cifar10_uint8.pt` in `root`) records the archive's size and mtime, so a replaced
    archive is parsed again; it is written atomically and read with `weights_only=True`.
    """
    root = Path(root)
    archive, folder, cache = root / archive_name, root / FOLDER, root / "cifar10_uint8.pt"
    stamp = _stamp(archive)
    if cache.is_file():
        cached = torch.load(cache, weights_only=True)
        if cached.get("source") == stamp:
            return cached
    if not archive.is_file() and not folder.is_dir():
        if not url:
            raise UserError(f"CIFAR-10 not found: put {archive_name} or {FOLDER}/ in {root} (data.root)")
        download(url, archive, md5, algorithm="md5")
        stamp = _stamp(archive)
    if archive.is_file():
        if md5:
            actual = file_digest(archive, "md5")
            if actual != md5:
                raise UserError(
                    f"{archive} has md5 {actual}, expected {md5} (data.md5): a corrupt or different archive"
                )
        folder = safe_extract(archive, root)
    parts = parse_folder(folder)
    parts["source"] = stamp
    fd, tmp = tempfile.mkstemp(prefix=".cifar10.", dir=root)
    os.close(fd)
    try:
        torch.save(parts, tmp)
        os.replace(tmp, cache)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return parts


def _stamp(archive: Path) -> list[int]:
    """Size and modification time of the archive ([] when there is none: the folder was given)."""
    if not archive.is_file():
        return []
    stat = archive.stat()
    return [stat.st_size, stat.st_mtime_ns]
