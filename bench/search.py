"""Pruned against unpruned: the same Optuna search on ETTh1 run once per pruner, side by side.

    python bench/search.py --data-dir ../shared/data                      # 20 trials, pruner none then halving
    python bench/search.py --pruners none median hyperband --overrides hydra.sweeper.sampler.seed=7
    python bench/search.py --trials 3 --overrides trainer.max_epochs=2    # a smoke run

Each search is `python train.py -m hparams_search=<search> pruner=<p> hydra.sweeper.n_trials=<n>` in a
fresh sweep dir, as a user starts it, timed from start to exit. The same sampler seed gives both
searches the same first proposals. From each study: trials finished / pruned / failed, validations
run, the best val/mse (the value Optuna was told: the best-validation checkpoint's val/mse), and
when the search first came within 1% of the first search's best. Only validation metrics are used.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from etth1 import machine  # the same machine description as the ETTh1 bench's CSV (bench/ is on sys.path)

from tunelab.training.optuna_storage import open_storage

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


@dataclass
class Search:
    pruner: str
    wall_s: float
    trials: list[optuna.trial.FrozenTrial]
    started: float  # unix time the search process started

    def count(self, state: str) -> int:
        return sum(t.state.name == state for t in self.trials)

    @property
    def validations(self) -> int:
        return sum(len(t.intermediate_values) for t in self.trials)

    @property
    def best(self) -> float:
        return min((t.value for t in self.trials if t.state.name == "COMPLETE"), default=float("nan"))

    def minutes_to(self, target: float) -> float | None:
        """Minutes from start until a finished trial first scored <= target (None: never)."""
        times = [
            t.datetime_complete.timestamp() - self.started
            for t in self.trials
            if t.state.name == "COMPLETE" and t.value <= target
        ]
        return min(times) / 60 if times else None


def run_search(search: str, pruner: str, trials: int, data_dir: Path, sweep_dir: Path, extra: list[str]) -> Search:
    command = [sys.executable, str(ROOT / "train.py"), "-m", f"hparams_search={search}", f"pruner={pruner}"]
    command += [
        f"hydra.sweeper.n_trials={trials}",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.sweeper.confirm.top_k=0",
        f"paths.data_dir={data_dir}",
    ]
    command += [*QUIET, *extra]
    started = time.time()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - started
    if result.returncode != 0:
        sys.exit(f"error: the search with pruner={pruner} failed:\n{result.stderr[-3000:]}")
    storage = open_storage(str(sweep_dir / "optuna.journal"))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return Search(pruner, wall, study.trials, started)


def table(searches: list[Search]) -> str:
    reference = searches[0]
    target = reference.best * 1.01
    lines = [
        f"| pruner | finished / pruned / failed | validations | wall (min) | best val/mse "
        f"| within 1% of pruner={reference.pruner}'s best after (min) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in searches:
        reached = s.minutes_to(target)
        lines.append(
            f"| {s.pruner} | {s.count('COMPLETE')} / {s.count('PRUNED')} / {s.count('FAIL')} | {s.validations} "
            f"| {s.wall_s / 60:.1f} | {s.best:.4f} | {'never' if reached is None else f'{reached:.1f}'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--search", default="etth1_s96_optuna", help="hparams_search option")
    parser.add_argument("--pruners", nargs="+", default=["none", "halving"], help="the first is the reference")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--overrides", nargs="*", default=[], help="more train.py overrides for every trial")
    args = parser.parse_args()

    searches, data_dir = [], args.data_dir.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in args.pruners:
            searches.append(run_search(args.search, pruner, args.trials, data_dir, Path(tmp) / pruner, args.overrides))
            print(f"pruner={pruner}: {searches[-1].wall_s / 60:.1f} min", flush=True)
    print(f"\n{args.trials}-trial search hparams_search={args.search} {' '.join(args.overrides)}; {machine()}\n")
    print(table(searches))
    reference = searches[0]
    for s in searches[1:]:
        print(
            f"\npruner={s.pruner} vs {reference.pruner}: wall time ratio {s.wall_s / reference.wall_s:.2f}, "
            f"best val/mse ratio {s.best / reference.best:.4f}"
        )


if __name__ == "__main__":
    main()
