"""Measure image recipes on real Fashion-MNIST; every finished run is one row of a CSV.

    python bench/images.py --data-root ../shared/data/fashion-mnist --seeds 0 1 2   # fmnist_rmsprop, fmnist_airbench
    python bench/images.py --table-only --doc docs/results.md   # the table of what the CSV holds, into the docs

Each (recipe, seed) is one ordinary training run of `experiment=<recipe> seed=<seed> [overrides]`,
trained in this process: early stopping and the best checkpoint on validation only, then that
checkpoint scored once on the official test set. The row (recipe with its version, overrides, seed,
val/acc, test/acc, epochs, minutes, machine) is appended as soon as the run ends; runs already in
the CSV are skipped. Last, it prints the table (mean ± std over seeds) beside the published numbers
(bench/driver.py runs all this).
"""

from __future__ import annotations

import argparse
import functools
import statistics
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from driver import Bench, Run, arguments, current, machine, stat, train_once
from driver import main as bench_main

FIELDS = ("recipe", "overrides", "seed", "val/acc", "test/acc", "epochs", "minutes", "machine")
# Test accuracies from the benchmark table of github.com/zalandoresearch/fashion-mnist's README
# (each row names its own source there); full training sets, 60,000 images.
PUBLISHED = (
    ("2 Conv + pooling (TensorFlow's tutorial)", 0.916),
    ("2 Conv + pooling + batch norm", 0.934),
    ("ResNet18", 0.949),
    ("MobileNet", 0.950),
    ("DenseNet-BC 768K params", 0.954),
    ("WRN-28-10 + random erasing", 0.963),
    ("WRN40-4 8.9M params (best listed)", 0.967),
    ("Crowd-sourced human performance", 0.835),
)
SOURCE = "github.com/zalandoresearch/fashion-mnist README, benchmark table"


def planned(args: argparse.Namespace) -> Iterator[Run]:
    """Each recipe at each seed."""
    extra = " ".join(args.overrides)
    for recipe in args.recipes:
        version = current(recipe)
        for seed in args.seeds:
            measure = functools.partial(run, recipe, args.overrides, seed, args.data_root)
            yield Run(f"{version} seed {seed}", (version, extra, str(seed)), measure)


def run(recipe: str, extra: list[str], seed: int, data_root: str | None, log_dir: Path) -> dict:
    """One run of `experiment=<recipe> seed=<seed> [overrides]`; its CSV row."""
    overrides = [f"experiment={recipe}", f"seed={seed}", *extra, *([f"data.root={data_root}"] if data_root else [])]
    trained = train_once(overrides, log_dir)
    return {
        "recipe": trained.recipe,
        "overrides": " ".join(extra),
        "seed": seed,
        "val/acc": f"{trained.metrics['val/acc']:.4f}",
        "test/acc": f"{trained.metrics['test/acc']:.4f}",
        "epochs": trained.epochs,
        "minutes": f"{trained.minutes:.1f}",
        "machine": machine(),
    }


def table(rows: list[dict[str, str]]) -> str:
    """Measured recipes (mean ± std over seeds), then the published numbers."""
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[row["recipe"], row["overrides"]].append(row)
    lines = [
        "| recipe | overrides | seeds | val acc | test acc | epochs | minutes per run | machine |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (recipe, overrides), runs in groups.items():
        cells = [stat([float(r[k]) for r in runs]) for k in ("val/acc", "test/acc")]
        epochs = statistics.mean(float(r["epochs"]) for r in runs)
        minutes = statistics.mean(float(r["minutes"]) for r in runs)
        lines.append(
            f"| {recipe} | {overrides} | {len(runs)} | {cells[0]} | {cells[1]} | {epochs:.0f} | {minutes:.1f} "
            f"| {runs[-1]['machine']} |"
        )
    lines += ["", f"Published Fashion-MNIST test accuracy ({SOURCE}):", "", "| model | test acc |", "| --- | --- |"]
    lines += [f"| {name} | {acc:.3f} |" for name, acc in PUBLISHED]
    return "\n".join(lines)


BENCH = Bench(
    "images",
    FIELDS,
    key=lambda row: (row["recipe"], row["overrides"], str(row["seed"])),
    shown=("val/acc", "test/acc"),
    table=table,
)


def main() -> None:
    parser = arguments(__doc__, BENCH)
    parser.add_argument(
        "--recipes", nargs="*", default=["fmnist_rmsprop", "fmnist_airbench"], help="experiment configs to measure"
    )
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--overrides", nargs="*", default=[], help="extra key=value overrides for every run")
    parser.add_argument("--data-root", help="folder with the four Fashion-MNIST files (default: data.root)")
    args = parser.parse_args()
    bench_main(BENCH, args, planned(args))


if __name__ == "__main__":
    main()
