"""Workers on one study, with and without splitting the cores: finished trials per minute, side by side.

    python bench/sweep_throughput.py                          # 12 trials of 3 epochs, on ./data
    python bench/sweep_throughput.py --trials 4 --epochs 1    # a smoke run

The same search (`hparams_search=etth1_s96_optuna` with the model's size, batch and epochs fixed, so
that every trial costs the same; lr and dropout searched; no pruner, no early stopping) is run three
ways, each in a fresh sweep dir, timed from start until every process has exited (bench/search.py's runner):
one worker with all trials; two workers started together with half the trials each and torch's
default threads (every core each: `threads=<cores>`, what two terminals gave before ThreadShare);
two workers with the split (`threads` null: each job takes its share of the cores).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from driver import ROOT, machine  # bench/ is on sys.path when a bench script runs
from search import run_search

from tunelab.training.callbacks.thread_share import machine_cores

FIXED_COST = ["model.net.hidden_sizes=[128]", "model.net.seg_len=24", "data.batch_size=128", "early_stopping=none"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12, help="trials of each search (even)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    args = parser.parse_args()

    cores = machine_cores()
    fixed = [*FIXED_COST, f"trainer.max_epochs={args.epochs}"]
    no_pruning = ["pruner=none", "hydra.sweeper.confirm.top_k=0"]
    modes = {"one worker": (1, None), "two workers, every core each": (2, cores), "two workers, split": (2, None)}
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (workers, threads)) in enumerate(modes.items()):
            way = no_pruning + ([] if threads is None else [f"threads={threads}"])
            search = run_search(
                "etth1_s96_optuna", name, way, workers, args.trials, args.data_dir.resolve(), Path(tmp) / str(i), fixed
            )
            done, wall = search.count("COMPLETE"), search.wall_s
            rates[name] = done / (wall / 60)
            print(f"{name}: {done} trials in {wall / 60:.2f} min, {rates[name]:.2f} trials/min", flush=True)
    print(f"\n{args.trials} trials of {args.epochs} epochs, {cores} cores; {machine()}")
    split = rates["two workers, split"]
    print(f"two split workers / one worker: {split / rates['one worker']:.2f}x")
    print(f"two split workers / two workers with every core each: {split / rates['two workers, every core each']:.2f}x")


if __name__ == "__main__":
    main()
