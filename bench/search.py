"""One Optuna search run several ways, side by side: with each pruner, or through hydra-optuna-sweeper against tunelab.

    python bench/search.py --data-dir ../shared/data                      # 20 trials, pruner none then halving
    python bench/search.py --pruners none median hyperband --overrides hydra.sweeper.sampler.seed=7
    python bench/search.py --trials 3 --overrides trainer.max_epochs=2    # a smoke run
    python bench/search.py --search etth1_s96_search --against-plugin --trials 32   # needs hydra-optuna-sweeper 1.4

Each way is `python train.py -m hparams_search=<search> ...` in a fresh sweep dir, as a user starts it, its
study in SQLite there, timed from start until every process of it has exited. Pruners: one process each,
`pruner=<p>`. `--against-plugin` (Hydra 1.4 with hydra-optuna-sweeper 1.4 installed beside tunelab): first
the plugin as its defaults have it (`hydra/sweeper=optuna`: TPE, no pruning, `n_jobs` = the cores' count of
trials at once through `hydra/launcher=joblib`), then tunelab's sweeper as the search config has it
(pruning) with `--workers` processes on one study, each job on its share of the cores. The same sampler seed
gives every way the same first proposals. From each study: trials finished / pruned / failed, validations
run, the best val/mse (the value Optuna was told: the best-validation checkpoint's val/mse), finished trials
per minute, and when a trial first came within 1% of the best value any way found. Only validation metrics
are used.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import optuna
from driver import QUIET, ROOT, machine, run_workers  # bench/ is on sys.path when a bench script runs

from tunelab.training.optuna_storage import open_storage


@dataclass
class Search:
    label: str  # how the tables name this way: "pruner=halving", "tunelab", "plugin"
    wall_s: float
    trials: list[optuna.trial.FrozenTrial]
    started: float  # unix time the search's processes started

    def count(self, state: str) -> int:
        return sum(t.state.name == state for t in self.trials)

    @property
    def validations(self) -> int:
        return sum(len(t.intermediate_values) for t in self.trials)

    @property
    def best(self) -> float:
        return min((t.value for t in self.trials if t.state.name == "COMPLETE"), default=float("nan"))

    @property
    def per_minute(self) -> float:
        """Trials finished (complete or pruned: the sampler learnt from both) per minute of wall time."""
        return (self.count("COMPLETE") + self.count("PRUNED")) / (self.wall_s / 60)

    def minutes_to(self, target: float) -> float | None:
        """Minutes from start until a finished trial first scored <= target (None: never)."""
        times = [
            t.datetime_complete.timestamp() - self.started
            for t in self.trials
            if t.state.name == "COMPLETE" and t.value <= target
        ]
        return min(times) / 60 if times else None


def run_search(
    search: str,
    label: str,
    way: list[str],
    workers: int,
    trials: int,
    data_dir: Path,
    sweep_dir: Path,
    extra: list[str],
) -> Search:
    """`workers` processes of `train.py -m hparams_search=<search> <way>` on one study, `trials` in all."""
    storage = f"sqlite:///{sweep_dir / 'study.db'}"
    command = [sys.executable, str(ROOT / "train.py"), "-m", f"hparams_search={search}", *way]
    command += [
        f"hydra.sweeper.n_trials={trials // workers}",
        f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.storage={storage}",
        f"paths.data_dir={data_dir}",
    ]
    command += [*QUIET, *extra]
    started, wall, codes = run_workers(command, workers, sweep_dir)
    failed = next((n for n, code in enumerate(codes) if code), None)
    if failed is not None:
        sys.exit(f"error: the search {label} failed:\n{(sweep_dir / f'worker{failed}.log').read_text()[-3000:]}")
    opened = open_storage(storage)
    (summary,) = optuna.get_all_study_summaries(opened)
    study = optuna.load_study(study_name=summary.study_name, storage=opened)
    return Search(label, wall, study.trials, started)


def ways(args: argparse.Namespace) -> list[tuple[str, list[str], int]]:
    """(label, overrides, processes) of each way to run the search; the first is the reference."""
    if not args.against_plugin:
        return [(f"pruner={p}", [f"pruner={p}", "hydra.sweeper.confirm.top_k=0"], 1) for p in args.pruners]
    cores = os.cpu_count() or 1
    plugin = ["hydra/sweeper=optuna", "hydra/launcher=joblib", f"hydra.sweeper.n_jobs={cores}", "pruner=none"]
    tunelab = ["hydra.sweeper.confirm.top_k=0"]  # the search config's sweeper and pruner, split workers
    return [("plugin", plugin, 1), ("tunelab", tunelab, args.workers)]


def within_1_percent(searches: list[Search]) -> float:
    """The value a search must reach to count as there: within 1% of the best any of them found."""
    return min(s.best for s in searches) * 1.01


def table(searches: list[Search]) -> str:
    target = within_1_percent(searches)
    lines = [
        "| search | finished / pruned / failed | validations | wall (min) | finished per min | best val/mse "
        "| within 1% of the best found after (min) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in searches:
        reached = s.minutes_to(target)
        lines.append(
            f"| {s.label} | {s.count('COMPLETE')} / {s.count('PRUNED')} / {s.count('FAIL')} | {s.validations} "
            f"| {s.wall_s / 60:.1f} | {s.per_minute:.2f} | {s.best:.4f} "
            f"| {'never' if reached is None else f'{reached:.1f}'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--search", default="etth1_s96_optuna", help="hparams_search option")
    parser.add_argument("--pruners", nargs="+", default=["none", "halving"], help="the first is the reference")
    parser.add_argument("--against-plugin", action="store_true", help="hydra-optuna-sweeper 1.4, then tunelab")
    parser.add_argument("--workers", type=int, default=2, help="tunelab's processes on one study (--against-plugin)")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--overrides", nargs="*", default=[], help="more train.py overrides for every trial")
    args = parser.parse_args()

    if args.against_plugin and importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is None:
        print("tunelab vs plugin: not measured: hydra-optuna-sweeper 1.4 is not installed beside tunelab")
        return
    searches, data_dir = [], args.data_dir.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        for n, (label, way, workers) in enumerate(ways(args)):
            sweep_dir = Path(tmp) / str(n)
            searches.append(
                run_search(args.search, label, way, workers, args.trials, data_dir, sweep_dir, args.overrides)
            )
            print(f"{label}: {searches[-1].wall_s / 60:.1f} min", flush=True)
    print(f"\n{args.trials}-trial search hparams_search={args.search} {' '.join(args.overrides)}; {machine()}\n")
    print(table(searches))
    reference = searches[0]
    target = within_1_percent(searches)
    for s in searches[1:]:
        print(f"\n{s.label} vs {reference.label}: wall time ratio {s.wall_s / reference.wall_s:.2f}, "
              f"best val/mse ratio {s.best / reference.best:.4f}, finished per minute ratio "
              f"{s.per_minute / reference.per_minute:.2f}", end="")  # fmt: skip
        mine, theirs = s.minutes_to(target), reference.minutes_to(target)
        if mine and theirs:
            print(f", {theirs / mine:.2f}x as fast to within 1% of the best found", end="")
        print()


if __name__ == "__main__":
    main()
