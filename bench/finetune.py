"""Fine-tuned against trained from scratch, on little data; every finished run is one row of a CSV.

    python bench/finetune.py fmnist --from <pretrain_fmnist run dir> --amounts 50 500 --seeds 0 1 2
    python bench/finetune.py etth1 --from <pretrain_etth2_m96 run dir> --amounts 0.1 0.25 --seeds 0 1 2
    python bench/finetune.py --table-only --doc docs/results.md   # the tables of what the CSV holds, into the docs

A task's recipe (`finetune_fmnist`, `finetune_etth1_m96`) runs once per (amount, seed) from the
pretrained weights and once from scratch (`finetune=none`), everything else equal. The amount is the
data key that makes the data little: training images per class, or the share of the training rows.
Runs train in this process: early stopping and the best checkpoint on validation only, that checkpoint
scored once on the test set. Rows already in the CSV are skipped (bench/driver.py runs all this).
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

FIELDS = ("task", "recipe", "start", "amount", "overrides", "seed", "val", "test", "epochs", "minutes", "machine")
# task: (recipe, the data key its amount sets, the metric compared, what the amount means)
TASKS = {
    "etth1": ("finetune_etth1_m96", "data.train_fraction", "mse", "share of ETTh1's training rows"),
    "fmnist": ("finetune_fmnist", "data.per_class", "acc", "training images per class"),
}


def planned(args: argparse.Namespace) -> Iterator[Run]:
    """Each amount at each seed, from the pretrained weights and from scratch."""
    version = current(TASKS[args.task][0])
    for amount in args.amounts:
        for seed in args.seeds:
            for start in args.starts:
                key = (version, start, amount, " ".join(args.overrides), str(seed))
                measure = functools.partial(run, start, amount, seed, args)
                yield Run(f"{args.task} {start} {amount} seed {seed}", key, measure)


def run(start: str, amount: str, seed: int, args: argparse.Namespace, log_dir: Path) -> dict:
    """One run from the pretrained weights (start `pretrained`) or from scratch; its CSV row."""
    recipe, key, metric, _ = TASKS[args.task]
    overrides = [f"experiment={recipe}", f"seed={seed}", f"{key}={amount}", *args.overrides]
    overrides += [f"finetune.from={args.source}"] if start == "pretrained" else ["finetune=none"]
    overrides += [f"data.root={args.data_root}"] if args.data_root else []
    overrides += [f"threads={args.threads}"] if args.threads else []
    trained = train_once(overrides, log_dir)
    return {
        "task": args.task,
        "recipe": trained.recipe,
        "start": start,
        "amount": amount,
        "overrides": " ".join(args.overrides),
        "seed": seed,
        "val": f"{trained.metrics[f'val/{metric}']:.4f}",
        "test": f"{trained.metrics[f'test/{metric}']:.4f}",
        "epochs": trained.epochs,
        "minutes": f"{trained.minutes:.1f}",
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


BENCH = Bench(
    "finetune",
    FIELDS,
    key=lambda row: (row["recipe"], row["start"], row["amount"], row["overrides"], str(row["seed"])),
    shown=("val", "test"),
    table=tables,
)


def main() -> None:
    parser = arguments(__doc__, BENCH)
    parser.add_argument("task", nargs="?", choices=sorted(TASKS), help="what to measure")
    parser.add_argument("--from", dest="source", help="the pretraining run dir (or checkpoint)")
    parser.add_argument("--amounts", nargs="*", default=[], help="values of the task's little-data key")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--starts", nargs="*", default=["pretrained", "scratch"], choices=["pretrained", "scratch"])
    parser.add_argument("--overrides", nargs="*", default=[], help="extra key=value overrides for every run")
    parser.add_argument("--threads", type=int, help="torch threads per run (not part of the row's overrides)")
    parser.add_argument("--data-root", help="the Fashion-MNIST folder (default: data.root)")
    args = parser.parse_args()
    if not args.table_only and (args.task is None or (args.source is None and "pretrained" in args.starts)):
        parser.error("give a task, and --from for the pretrained runs")
    bench_main(BENCH, args, planned(args))


if __name__ == "__main__":
    main()
