"""Measure ETTh1 recipes on the standard protocol; every finished run is one row of a CSV.

    python bench/etth1.py --data-dir ../shared/data --recipes etth1_m96 etth1_s96 --seeds 0 1 2
    python bench/etth1.py --recipes etth1_lstm_s96 --models lstm gru linear naive --seeds 0
    python bench/etth1.py --recipes etth1_s96 --overrides model.net.hidden_sizes=[128] --seeds 0   # a variant
    python bench/etth1.py --table-only                      # the summary of what the CSV holds

Each (recipe, model, seed) is one ordinary training run of `experiment=<recipe> [model=<model>]
seed=<seed> [overrides]`, composed from conf/ and trained in this process: early stopping on val/loss, then the
best-validation checkpoint scored once on val and test. The row (recipe, model, overrides, seed,
val/mse, test/mse, test/mae, minutes, machine) is appended to the CSV as soon as the run ends, so an
interrupted bench loses at most the run in progress; runs already in the CSV are skipped. Last, it
prints the mean ± std over seeds of every (recipe, model, overrides) in the CSV.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from tunelab.cli import compose_train
from tunelab.train import train

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ("recipe", "model", "overrides", "seed", "val/mse", "test/mse", "test/mae", "minutes", "machine")
DETERMINISTIC = ("naive", "seasonal_naive")  # no parameters: one seed says it all


def machine() -> str:
    """What the run trained on, for the CSV's machine column."""
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name()}"
    return f"CPU {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


def run(recipe: str, model: str, extra: list[str], seed: int, data_dir: Path, log_dir: Path) -> dict[str, float]:
    overrides = [f"experiment={recipe}", f"seed={seed}", "logger=none", *([f"model={model}"] if model else [])]
    overrides += ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", *extra]
    output_dir = log_dir / f"{recipe}_{model or 'recipe'}_{len(extra)}_{seed}"
    return train(compose_train(ROOT / "conf", overrides, root_dir=ROOT, data_dir=data_dir, output_dir=output_dir))


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def append_row(path: Path, row: dict) -> None:
    new = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def summary(rows: list[dict[str, str]]) -> str:
    """Markdown table: mean ± std over seeds of each (recipe, model, overrides) in the CSV."""
    groups: dict[tuple[str, str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[row["recipe"], row["model"], row["overrides"]].append(row)
    lines = [
        "| recipe | model | overrides | seeds | val MSE | test MSE | test MAE | minutes per run | machine |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (recipe, model, overrides), runs in groups.items():

        def stat(key: str, runs=runs) -> str:
            values = [float(r[key]) for r in runs]
            spread = f" ± {statistics.stdev(values):.4f}" if len(values) > 1 else ""
            return f"{statistics.mean(values):.4f}{spread}"

        minutes = statistics.mean(float(r["minutes"]) for r in runs)
        machines = ", ".join(sorted({r["machine"] for r in runs}))
        lines.append(
            f"| {recipe} | {model or 'recipe'} | {overrides} | {len(runs)} | {stat('val/mse')} | {stat('test/mse')} | "
            f"{stat('test/mae')} | {minutes:.1f} | {machines} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding ETT-small/")
    parser.add_argument("--recipes", nargs="+", default=["etth1_m96", "etth1_s96"], help="experiment= options")
    parser.add_argument("--models", nargs="+", default=[""], help="model= options ('' keeps the recipe's model)")
    parser.add_argument("--overrides", nargs="*", default=[], help="extra key=value overrides of every run")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "etth1.csv")
    parser.add_argument("--table-only", action="store_true", help="print the CSV's summary, run nothing")
    args = parser.parse_args()

    if not args.table_only:
        extra = " ".join(args.overrides)
        done = {(r["recipe"], r["model"], r["overrides"], int(r["seed"])) for r in read_rows(args.csv)}
        with tempfile.TemporaryDirectory() as tmp:
            for recipe in args.recipes:
                for model in args.models:
                    for seed in args.seeds[:1] if model in DETERMINISTIC else args.seeds:
                        if (recipe, model, extra, seed) in done:
                            print(f"{recipe} {model or 'recipe'} seed {seed}: in {args.csv} already", flush=True)
                            continue
                        started = time.perf_counter()
                        metrics = run(recipe, model, args.overrides, seed, args.data_dir.resolve(), Path(tmp))
                        row = {
                            "recipe": recipe,
                            "model": model,
                            "overrides": extra,
                            "seed": seed,
                            "val/mse": f"{metrics['val/mse']:.6f}",
                            "test/mse": f"{metrics['test/mse']:.6f}",
                            "test/mae": f"{metrics['test/mae']:.6f}",
                            "minutes": f"{(time.perf_counter() - started) / 60:.2f}",
                            "machine": machine(),
                        }
                        append_row(args.csv, row)
                        print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    print(summary(read_rows(args.csv)))


if __name__ == "__main__":
    main()
