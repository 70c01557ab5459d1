"""Fine-tuned against trained from scratch, on little data; every finished run is one row of a CSV.

    python bench/finetune.py fmnist --from <pretrain_fmnist run dir> --amounts 50 500 --seeds 0 1 2
    python bench/finetune.py etth1 --from <pretrain_etth2_m96 run dir> --amounts 0.1 0.25 --seeds 0 1 2
    python bench/finetune.py --table-only --readme README.md   # the tables of what the CSV holds, into the README

A task's recipe (`finetune_fmnist`, `finetune_etth1_m96`) runs once per (amount, seed) from the
pretrained weights and once from scratch (`finetune=none`), everything else equal. The amount is the
data key that makes the data little: training images per class, or the share of the training rows.
Runs train in this process: early stopping and the best checkpoint on validation only, that checkpoint
scored once on the test set. Rows already in the CSV are skipped.
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
FIELDS = ("task", "recipe", "start", "amount", "overrides", "seed", "val", "test", "epochs", "minutes", "machine")
# task: (recipe, the data key its amount sets, the metric compared, what the amount means)
TASKS = {
    "etth1": ("finetune_etth1_m96", "data.train_fraction", "mse", "share of ETTh1's training rows"),
    "fmnist": ("finetune_fmnist", "data.per_class", "acc", "training images per class"),
}
README_BEGIN = "<!-- finetune tables: written by python bench/finetune.py --table-only --readme README.md -->"
README_END = "<!-- end of finetune tables -->"


def measure(task: str, start: str, amount: str, seed: int, args: argparse.Namespace, log_dir: Path) -> dict:
    """One run from the pretrained weights (start `pretrained`) or from scratch; its CSV row."""
    recipe, key, metric, _ = TASKS[task]
    overrides = [f"experiment={recipe}", f"seed={seed}", f"{key}={amount}", "logger=none", *args.overrides]
    overrides += ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    overrides += [f"finetune.from={args.source}"] if start == "pretrained" else ["finetune=none"]
    overrides += [f"data.root={args.data_root}"] if args.data_root else []
    overrides += [f"threads={args.threads}"] if args.threads else []
    output_dir = log_dir / f"{task}_{start}_{amount}_{seed}"
    cfg = compose_train(ROOT / "conf", overrides, root_dir=ROOT, output_dir=output_dir)
    started = time.perf_counter()
    metrics = train(cfg)
    summary = json.loads((output_dir / "metrics.json").read_text())
    return {
        "task": task,
        "recipe": str(cfg.recipe),
        "start": start,
        "amount": amount,
        "overrides": " ".join(args.overrides),
        "seed": seed,
        "val": f"{metrics[f'val/{metric}']:.4f}",
        "test": f"{metrics[f'test/{metric}']:.4f}",
        "epochs": summary["epochs"],
        "minutes": f"{(time.perf_counter() - started) / 60:.1f}",
        "machine": machine(),
    }


def tables(rows: list[dict[str, str]]) -> str:
    """One table per task: each (amount, start, overrides) as mean ± std over its seeds."""
    out = []
    for task, (recipe, key, metric, meaning) in TASKS.items():
        groups: dict[tuple[str, str, str, str], list[dict[str, str]]] = defaultdict(list)
        for row in rows:
            if row["task"] == task:
                groups[row["recipe"], row["amount"], row["overrides"], row["start"]].append(row)
        if not groups:
            continue
        out += [f"`{recipe}` ({key}: {meaning}; test {metric} of the best-validation checkpoint):", ""]
        head = f"| recipe | {key} | overrides | start | seeds | val {metric} | test {metric} | epochs | minutes |"
        out += [f"{head} machine |"]
        out += ["| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for (version, amount, extra, start), runs in sorted(groups.items(), key=lambda g: (float(g[0][1]), g[0][2:])):
            val, test = (stat([float(r[k]) for r in runs]) for k in ("val", "test"))
            epochs = statistics.mean(float(r["epochs"]) for r in runs)
            minutes = statistics.mean(float(r["minutes"]) for r in runs)
            out.append(
                f"| {version} | {amount} | {extra} | {start} | {len(runs)} | {val} | {test} | {epochs:.0f} "
                f"| {minutes:.1f} | {runs[-1]['machine']} |"
            )
        out.append("")
    return "\n".join(out).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", nargs="?", choices=sorted(TASKS), help="what to measure")
    parser.add_argument("--from", dest="source", help="the pretraining run dir (or checkpoint)")
    parser.add_argument("--amounts", nargs="*", default=[], help="values of the task's little-data key")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--starts", nargs="*", default=["pretrained", "scratch"], choices=["pretrained", "scratch"])
    parser.add_argument("--overrides", nargs="*", default=[], help="extra key=value overrides for every run")
    parser.add_argument("--threads", type=int, help="torch threads per run (not part of the row's overrides)")
    parser.add_argument("--data-root", help="the Fashion-MNIST folder (default: data.root)")
    parser.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "finetune.csv")
    parser.add_argument("--table-only", action="store_true", help="print the tables of the CSV, train nothing")
    parser.add_argument("--readme", type=Path, help="also write the tables between the README's markers")
    args = parser.parse_args()

    if not args.table_only:
        if args.task is None or (args.source is None and "pretrained" in args.starts):
            parser.error("give a task, and --from for the pretrained runs")
        version = str(OmegaConf.load(ROOT / "conf" / "experiment" / f"{TASKS[args.task][0]}.yaml").recipe)
        done = {(r["recipe"], r["start"], r["amount"], r["overrides"], r["seed"]) for r in read_rows(args.csv)}
        with tempfile.TemporaryDirectory() as log_dir:
            for amount in args.amounts:
                for seed in args.seeds:
                    for start in args.starts:
                        if (version, start, amount, " ".join(args.overrides), str(seed)) in done:
                            print(f"{args.task} {start} {amount} seed {seed}: in {args.csv} already")
                            continue
                        row = measure(args.task, start, amount, seed, args, Path(log_dir))
                        append_row(args.csv, row, FIELDS)
                        print(
                            f"{args.task} {start} {amount} seed {seed}: val {row['val']}, test {row['test']}",
                            flush=True,
                        )
    text = tables(read_rows(args.csv))
    print(text)
    if args.readme:
        write_readme(args.readme, text, README_BEGIN, README_END)


if __name__ == "__main__":
    main()
