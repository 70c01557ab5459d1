"""Checksum-verified, atomic downloads: a file appears at its final path complete or not at all."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tunelab.errors import UserError


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks so large archives need little memory."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, checksum: str, algorithm: str = "sha256", timeout: float = 60.0) -> Path:
    """Fetch `url` to `dest`, verify its `algorithm` digest, then move it into place atomically.

    The bytes go to a temporary file in the destination folder (same file system, so the final
    `os.replace` is atomic); on any failure that file is removed and nothing appears at `dest`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        actual = file_digest(tmp, algorithm)
        if actual != checksum.lower():
            raise UserError(
                f"downloaded {url} but its {algorithm} is {actual}, expected {checksum}; "
                f"the file was discarded and nothing was written to {dest}."
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError) as err:
        raise UserError(
            f"could not download {url} ({err}). Without network access, place the file at {dest} yourself."
        ) from err
    finally:
        tmp.unlink(missing_ok=True)
    return dest
