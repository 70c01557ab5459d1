"""Workers on one study, with and without splitting the cores: finished trials per minute, side by side.

    python bench/sweep_throughput.py                          # 12 trials of 3 epochs, on ./data
    python bench/sweep_throughput.py --trials 4 --epochs 1    # a smoke run

The same search (`hparams_search=etth1_s96_optuna` with the model's size, batch and epochs fixed, so
that every trial costs the same; lr and dropout searched; no pruner, no early stopping) is run three
ways, each in a fresh sweep dir, timed from start until every process has exited:
one worker with all trials; two workers started together with half the trials each and torch's
default threads (every core each: `threads=<cores>`, what two terminals gave before ThreadShare);
two workers with the split (`threads` null: each job takes its share of the cores).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from etth1 import machine  # the same machine description as the ETTh1 bench's CSV (bench/ is on sys.path)

from tunelab.training.callbacks.thread_share import machine_cores
from tunelab.training.optuna_storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
FIXED_COST = ["model.net.hidden_sizes=[128]", "model.net.seg_len=24", "data.batch_size=128", "early_stopping=none"]


def run_mode(workers: int, trials: int, threads: int | None, sweep_dir: Path, common: list[str]) -> tuple[float, int]:
    """Wall seconds and finished trials of `workers` processes sharing one study, `trials` in all."""
    command = [sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=etth1_s96_optuna", "pruner=none"]
    command += [
        f"hydra.sweeper.n_trials={trials // workers}",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.sweeper.confirm.top_k=0",
        *common,
    ]
    command += [] if threads is None else [f"threads={threads}"]
    started = time.time()
    procs = [
        subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    errors = [p.communicate()[1] for p in procs]
    wall = time.time() - started
    failed = [error for error, proc in zip(errors, procs, strict=True) if proc.returncode]
    if failed:
        sys.exit(f"error: a worker failed:\n{failed[0][-3000:]}")
    storage = open_storage(str(sweep_dir / "optuna.journal"))
    study = optuna.load_study(study_name="etth1_s96", storage=storage)
    return wall, sum(t.state.name == "COMPLETE" for t in study.trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12, help="trials of each search (even)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    args = parser.parse_args()

    cores = machine_cores()
    common = [*QUIET, *FIXED_COST, f"trainer.max_epochs={args.epochs}", f"paths.data_dir={args.data_dir.resolve()}"]
    modes = {"one worker": (1, None), "two workers, every core each": (2, cores), "two workers, split": (2, None)}
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (workers, threads)) in enumerate(modes.items()):
            wall, done = run_mode(workers, args.trials, threads, Path(tmp) / str(i), common)
            rates[name] = done / (wall / 60)
            print(f"{name}: {done} trials in {wall / 60:.2f} min, {rates[name]:.2f} trials/min", flush=True)
    print(f"\n{args.trials} trials of {args.epochs} epochs, {cores} cores; {machine()}")
    split = rates["two workers, split"]
    print(f"two split workers / one worker: {split / rates['one worker']:.2f}x")
    print(f"two split workers / two workers with every core each: {split / rates['two workers, every core each']:.2f}x")


if __name__ == "__main__":
    main()
