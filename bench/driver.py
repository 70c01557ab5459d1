"""What the measuring benches (etth1.py, images.py) share: a results CSV with one row per finished run,
the machine it ran on, and the README block each writes its table into."""

from __future__ import annotations

import csv
import os
import platform
import re
import statistics
from collections.abc import Sequence
from pathlib import Path

import torch


def machine() -> str:
    """What the run trained on, for the CSV's machine column."""
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name()}"
    return f"CPU {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def stat(values: list[float]) -> str:
    """Mean ± sample std (the mean alone for one run)."""
    spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.4f}{spread}"


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def append_row(path: Path, row: dict, fields: Sequence[str]) -> None:
    """Add one finished run; a new file starts with the header."""
    new = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def write_readme(path: Path, text: str, begin: str, end: str) -> None:
    """Replace what lies between the README's `begin` and `end` markers with `text`."""
    readme = path.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(readme):
        raise SystemExit(f"error: {path} has no '{begin}' ... '{end}' block")
    path.write_text(pattern.sub(lambda _: f"{begin}\n{text}\n{end}", readme))
