"""Measure image recipes on real Fashion-MNIST; every finished run is one row of a CSV.

    python bench/images.py --data-root ../shared/data/fashion-mnist --seeds 0 1 2   # fmnist_rmsprop, fmnist_airbench
    python bench/images.py --table-only --readme README.md   # the table of what the CSV holds, into the README

Each (recipe, seed) is one ordinary training run of `experiment=<recipe> seed=<seed> [overrides]`,
trained in this process: early stopping and the best checkpoint on validation only, then that
checkpoint scored once on the official test set. The row (recipe with its version, overrides, seed,
val/acc, test/acc, epochs, minutes, machine) is appended as soon as the run ends; runs already in
the CSV are skipped. Last, it prints the table (mean ± std over seeds) beside the published numbers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from omegaconf import OmegaConf
from result_rows import append_row, machine, read_rows, stat, write_readme

from tunelab.cli import compose_train
from tunelab.train import train

ROOT = Path(__file__).resolve().parents[1]
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
README_BEGIN = "<!-- images table: written by python bench/images.py --table-only --readme README.md -->"
README_END = "<!-- end of images table -->"


def measure(recipe: str, extra: list[str], seed: int, data_root: str | None, log_dir: Path) -> dict:
    """One run; its CSV row."""
    overrides = [f"experiment={recipe}", f"seed={seed}", "logger=none", *extra]
    overrides += ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    overrides += [f"data.root={data_root}"] if data_root else []
    output_dir = log_dir / f"{recipe}_{len(extra)}_{seed}"
    cfg = compose_train(ROOT / "conf", overrides, root_dir=ROOT, output_dir=output_dir)
    started = time.perf_counter()
    metrics = train(cfg)
    summary = json.loads((output_dir / "metrics.json").read_text())
    return {
        "recipe": str(cfg.recipe),
        "overrides": " ".join(extra),
        "seed": seed,
        "val/acc": f"{metrics['val/acc']:.4f}",
        "test/acc": f"{metrics['test/acc']:.4f}",
        "epochs": summary["epochs"],
        "minutes": f"{(time.perf_counter() - started) / 60:.1f}",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--recipes", nargs="*", default=["fmnist_rmsprop", "fmnist_airbench"], help="experiment configs to measure"
    )
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--overrides", nargs="*", default=[], help="extra key=value overrides for every run")
    parser.add_argument("--data-root", help="folder with the four Fashion-MNIST files (default: data.root)")
    parser.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "images.csv")
    parser.add_argument("--table-only", action="store_true", help="print the table of the CSV, train nothing")
    parser.add_argument("--readme", type=Path, help="also write the table between the README's markers")
    args = parser.parse_args()

    if not args.table_only:
        done = {(r["recipe"], r["overrides"], r["seed"]) for r in read_rows(args.csv)}
        with tempfile.TemporaryDirectory() as log_dir:
            for recipe in args.recipes:
                version = str(OmegaConf.load(ROOT / "conf" / "experiment" / f"{recipe}.yaml").recipe)
                for seed in args.seeds:
                    if (version, " ".join(args.overrides), str(seed)) in done:
                        print(f"{version} seed {seed}: in {args.csv} already")
                        continue
                    row = measure(recipe, args.overrides, seed, args.data_root, Path(log_dir))
                    append_row(args.csv, row, FIELDS)
                    print(f"{version} seed {seed}: val/acc {row['val/acc']}, test/acc {row['test/acc']}", flush=True)
    text = table(read_rows(args.csv))
    print(text)
    if args.readme:
        write_readme(args.readme, text, README_BEGIN, README_END)


if __name__ == "__main__":
    main()
