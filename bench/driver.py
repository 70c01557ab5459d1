"""The one driver of the measuring benches (etth1.py, images.py, finetune.py): each finished run is one row of
a results CSV, runs already there are skipped, and the table of what the CSV holds is printed and written
into the docs file that shows it.

A bench says what it is (a `Bench`: its CSV columns, what makes two rows the same run, its table, the docs
block) and which runs it wants (`Run`s, made lazily so that a plan can read the rows earlier runs added);
`main` does the rest, the same way for each.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from tunelab.cli import compose_train
from tunelab.train import train

ROOT = Path(__file__).resolve().parents[1]
Row = dict[str, Any]
# A bench's training runs print nothing and log nowhere: their numbers go into the bench's own tables
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


@dataclass(frozen=True)
class Bench:
    name: str  # the CSV's name (bench/results/<name>.csv) and the docs block's: "<!-- <name> tables: ... -->"
    fields: Sequence[str]  # the CSV's columns
    key: Callable[[Row], tuple]  # what makes two rows the same run (a row's seed may be an int or its text)
    shown: Sequence[str]  # the columns printed when a run ends
    table: Callable[[list[Row]], str]  # the markdown of the CSV's rows
    doc: str = "docs/results.md"  # the docs file holding the table, relative to the repository

    @property
    def begin(self) -> str:
        return f"<!-- {self.name} tables: written by python bench/{self.name}.py --table-only --doc {self.doc} -->"

    @property
    def end(self) -> str:
        return f"<!-- end of {self.name} tables -->"


@dataclass(frozen=True)
class Run:
    label: str  # how the output names it: "etth1_m96/v3 recipe seed 0"
    key: tuple  # Bench.key of the row it will write
    measure: Callable[[Path], Row]  # trains in the given log folder; its CSV row


def arguments(description: str, bench: Bench) -> argparse.ArgumentParser:
    """A bench's command line with the driver's own options: --csv, --table-only, --doc."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / f"{bench.name}.csv")
    parser.add_argument("--table-only", action="store_true", help="print the tables of the CSV, train nothing")
    parser.add_argument("--doc", type=Path, help=f"also write the tables into this file's block (e.g. {bench.doc})")
    return parser


def main(bench: Bench, args: argparse.Namespace, runs: Iterable[Run]) -> None:
    """Measure each run of `runs` not in the CSV yet (unless --table-only), appending its row as soon as it
    ends, so an interrupted bench loses at most the run in progress; then print (and write) the tables."""
    if not args.table_only:
        done = {bench.key(row) for row in read_rows(args.csv)}
        with tempfile.TemporaryDirectory() as log_dir:
            for run in runs:
                if run.key in done:
                    print(f"{run.label}: in {args.csv} already", flush=True)
                    continue
                row = run.measure(Path(log_dir))
                append_row(args.csv, row, bench.fields)
                done.add(bench.key(row))
                print(f"{run.label}: " + ", ".join(f"{k} {row[k]}" for k in bench.shown), flush=True)
    text = bench.table(read_rows(args.csv))
    print(text)
    if args.doc:
        write_block(args.doc, text, bench.begin, bench.end)


@dataclass(frozen=True)
class Trained:
    recipe: str  # the recipe's name and version, as its config says
    metrics: dict[str, float]  # the best-validation checkpoint's val and test metrics
    epochs: int
    minutes: float


@functools.cache
def current(recipe: str) -> str:
    """The recipe's name/version as its config says (`recipe: etth1_m96/v1`): rows of an older version of a
    recipe are not mixed into a table's cells, nor do they count as runs already done."""
    return str(OmegaConf.load(ROOT / "conf" / "experiment" / f"{recipe}.yaml").recipe)


def train_once(overrides: list[str], log_dir: Path, **paths: Path | str) -> Trained:
    """One ordinary training run of `python train.py <overrides>`, in this process and quiet, in a folder of
    its own under `log_dir`: early stopping and the best checkpoint on validation, that checkpoint scored once
    on val and test."""
    output_dir = Path(tempfile.mkdtemp(dir=log_dir))
    cfg = compose_train(ROOT / "conf", [*QUIET, *overrides], root_dir=ROOT, output_dir=output_dir, **paths)
    started = time.perf_counter()
    metrics = train(cfg)
    epochs = json.loads((output_dir / "metrics.json").read_text())["epochs"]
    return Trained(str(cfg.recipe), metrics, epochs, (time.perf_counter() - started) / 60)


def run_workers(command: list[str], workers: int, log_dir: Path) -> tuple[float, float, list[int]]:
    """`workers` processes of `command` (several workers of one search) started together in the repository, each
    writing to `log_dir/worker<n>.log`; once every one has ended, the unix time they started, the wall seconds and
    their exit codes."""
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    processes = []
    for n in range(workers):
        with (log_dir / f"worker{n}.log").open("a") as log:
            processes.append(subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
    codes = [p.wait() for p in processes]
    return started, time.time() - started, codes


def machine(threads: int | None = None) -> str:
    """What the run trained on, for the CSV's machine column (`threads`: the run's torch threads, when it ran in
    another process than this one)."""
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name()}"
    return f"CPU {platform.machine()}, {os.cpu_count()} cores, {threads or torch.get_num_threads()} torch threads"


def stat(values: list[float]) -> str:
    """Mean ± sample std (the mean alone for one run)."""
    spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
    return f"{statistics.mean(values):.4f}{spread}"


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def append_row(path: Path, row: Row, fields: Sequence[str]) -> None:
    """Add one finished run; a new file starts with the header."""
    new = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        if new:
            writer.writeheader()
        writer.writerow(row)


def write_block(path: Path, text: str, begin: str, end: str) -> None:
    """Replace what lies between the file's `begin` and `end` markers with `text`."""
    doc = path.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(doc):
        raise SystemExit(f"error: {path} has no '{begin}' ... '{end}' block")
    path.write_text(pattern.sub(lambda _: f"{begin}\n{text}\n{end}", doc))
