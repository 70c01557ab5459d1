"""Fault injection for searches: workers started together on one study, killed (SIGKILL) at random moments,
started again, then one clean worker run to the end; afterwards the invariants a search promises are checked.

A scenario is drawn from its seed (sampler, workers, kills, confirmation, naps, a study budget), so a failing
one replays with the same choices (the moments a kill lands on still depend on the machine's timing). The objective is
tests/optuna_apps/objective.py (no torch). Run many at once with

    python tests/search_chaos.py --scenarios 200 --storage journal sqlite postgres

which prints each scenario's violations and the counts; tests/test_search_chaos.py runs a few in the fast
tier and 200 in the slow one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

APP = Path(__file__).parent / "optuna_apps" / "objective.py"
GRACE = 3.0  # a dead worker's trial is noticed after this many seconds without a beat (beats every 0.2 s)
GRID = {(x, y) for x in (1, 2) for y in (10, 20)}  # objective.yaml's grid


@dataclasses.dataclass
class Scenario:
    seed: int
    storage: str  # journal | sqlite | postgres
    sampler: str  # grid | tpe | random
    workers: int  # started together in each round
    rounds: int  # rounds of workers before the clean one
    kills: list[list[float | None]]  # per round, per worker: SIGKILL after this many seconds, or None
    n_trials: list[list[int]]  # per round, per worker
    confirm: bool  # the 2 best configurations again on seeds 0 and 1
    nap: float  # seconds each job sleeps
    budget: int | None  # hydra.sweeper.study_trials (not on a grid, whose points are its budget)

    @classmethod
    def draw(cls, seed: int, storage: str) -> Scenario:
        rng = random.Random(seed)
        workers, rounds = rng.randint(1, 3), rng.randint(1, 2)
        kills = [[rng.uniform(0.5, 4.0) if rng.random() < 0.5 else None for _ in range(workers)] for _ in range(rounds)]
        n_trials = [[rng.randint(1, 3) for _ in range(workers)] for _ in range(rounds)]
        sampler, confirm = rng.choice(["grid", "tpe", "random"]), rng.random() < 0.5
        nap = rng.choice([0.05, 0.3, 0.8])
        # drawn last, so that every other choice of a seed is the one it had before budgets were drawn
        budget = rng.randint(2, 5) if sampler != "grid" and rng.random() < 0.5 else None
        return cls(seed, storage, sampler, workers, rounds, kills, n_trials, confirm, nap, budget)


def worker_args(scenario: Scenario, sweep_dir: Path, url: str, n_trials: int) -> list[str]:
    args = ["-m", f"hydra.sweep.dir={sweep_dir}", f"hydra.sweeper.storage={url}", f"nap={scenario.nap}"]
    args += [f"hydra.sweeper.n_trials={n_trials}", f"hydra.sweeper.grace_period={GRACE}"]
    if scenario.sampler != "grid":
        args += [f"hydra/sweeper/sampler={scenario.sampler}", f"hydra.sweeper.sampler.seed={scenario.seed}"]
    if scenario.confirm:
        args += ["hydra.sweeper.confirm.top_k=2", "hydra.sweeper.confirm.seeds=[0,1]"]
    if scenario.budget is not None:
        args += [f"hydra.sweeper.study_trials={scenario.budget}"]
    return args


def start(args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "a") as out:
        return subprocess.Popen([sys.executable, str(APP), *args], cwd=APP.parent, stdout=out, stderr=out)


def run(scenario: Scenario, root: Path, url: str) -> list[str]:
    """Play the scenario in `root` on the storage `url`; return the invariants it broke (none: [])."""
    sweep_dir, log = root / "sweep", root / "workers.log"
    root.mkdir(parents=True, exist_ok=True)
    killed: set[int] = set()
    for kills, n_trials in zip(scenario.kills, scenario.n_trials, strict=True):
        started = [start(worker_args(scenario, sweep_dir, url, n), log) for n in n_trials]
        begun = time.monotonic()
        for worker, kill in sorted(zip(started, kills, strict=True), key=lambda p: p[1] or math.inf):
            if kill is not None:
                time.sleep(max(0.0, begun + kill - time.monotonic()))
                if worker.poll() is None:
                    worker.send_signal(signal.SIGKILL)
                    killed.add(worker.pid)
        for worker in started:
            worker.wait(timeout=600)
            if worker.returncode not in (0, -signal.SIGKILL):
                return [f"a worker ended with status {worker.returncode}: {tail(log)}"]
        if killed:
            time.sleep(GRACE + 0.5)  # the dead workers' trials and claims are noticed
    study = load(url)
    open_trials = len(study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))) if study else 0
    extra = 8 if scenario.sampler == "grid" else scenario.budget or 1  # a budget: the clean worker fills it
    final = start(worker_args(scenario, sweep_dir, url, open_trials + extra), log)
    if final.wait(timeout=600) != 0:
        return [f"the clean worker ended with status {final.returncode}: {tail(log)}"]
    return violations(scenario, sweep_dir, url, killed)


def tail(log: Path, lines: int = 20) -> str:
    """The log's last lines, in the violation itself: CI's report shows it, CI's files are gone."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def load(url: str) -> optuna.Study | None:
    from tunelab.training.optuna_storage import connect

    storage = connect(url)
    names = [s.study_name for s in optuna.study.get_all_study_summaries(storage) if s.study_name == "search"]
    return optuna.load_study(study_name="search", storage=storage) if names else None


def violations(scenario: Scenario, sweep_dir: Path, url: str, killed: set[int]) -> list[str]:
    found: list[str] = []
    study = load(url)
    trials = study.trials if study else []
    for check in CHECKS:
        found += check(scenario, sweep_dir, trials, killed)
    return found


Trials = list[optuna.trial.FrozenTrial]


def nothing_left_open(scenario: Scenario, sweep_dir: Path, trials: Trials, killed: set[int]) -> list[str]:
    stuck = [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    return [f"trials left RUNNING or WAITING: {stuck}"] if stuck else []


def grid_complete_once(scenario: Scenario, sweep_dir: Path, trials: Trials, killed: set[int]) -> list[str]:
    if scenario.sampler != "grid":
        return []
    done = [(t.params["x"], t.params["y"]) for t in trials if t.state == TrialState.COMPLETE]
    missing, twice = GRID - set(done), {p for p in done if done.count(p) > 1}
    return [f"grid points never completed: {sorted(missing)}"] * bool(missing) + [
        f"grid points completed twice: {sorted(twice)}"
    ] * bool(twice)


def dead_trials_retried(scenario: Scenario, sweep_dir: Path, trials: Trials, killed: set[int]) -> list[str]:
    retries: dict[int, optuna.trial.FrozenTrial] = {}  # each dead trial's first retry: a later one does not run
    for t in sorted(trials, key=lambda t: t.number):
        if "retry_of" in t.user_attrs:
            retries.setdefault(t.user_attrs["retry_of"], t)
    lost = []
    for trial in trials:
        dead = trial.state == TrialState.FAIL and "no heartbeat" in str(trial.user_attrs.get("error"))
        ran = "tunelab:job_dir" in trial.system_attrs or "retry_of" in trial.user_attrs  # (else killed while
        if dead and ran:  # drawing its parameters: no job ran, nothing to retry)
            retry = retries.get(trial.number)
            while retry is not None and retry.state == TrialState.FAIL:  # the retry died too: its own retry
                retry = retries.get(retry.number)
            wanted = trial.system_attrs.get("fixed_params") or trial.params  # a retry's: what it was queued with
            if retry is None or retry.state != TrialState.COMPLETE or retry.params != wanted:
                lost.append(trial.number)
    return [f"dead trials whose parameters no retry completed: {lost}"] if lost else []


def budget_kept(scenario: Scenario, sweep_dir: Path, trials: Trials, killed: set[int]) -> list[str]:
    """With a study budget the study ends with at least that many finished trials (the clean worker fills it) and
    at most one more per worker that asked at the same moment as another."""
    if scenario.budget is None:
        return []
    finished = len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)])
    if scenario.budget <= finished <= scenario.budget + scenario.workers - 1:
        return []
    return [f"{finished} finished trials for a study budget of {scenario.budget}"]


def job_events(sweep_dir: Path) -> list[tuple[str, str, int]]:
    """(event, job dir, pid) of every job start and end, in order."""
    log = sweep_dir / "jobs.log"
    lines = log.read_text().splitlines() if log.is_file() else []
    return [(event, job, int(pid)) for event, job, pid in (line.split() for line in lines)]


def no_dir_run_twice_at_once(scenario: Scenario, sweep_dir: Path, trials: Trials, killed: set[int]) -> list[str]:
    running: dict[str, int] = {}
    clashes = []
    for event, job, pid in job_events(sweep_dir):
        if event == "start":
            if job in running and running[job] not in killed:  # started again while a live process ran it
                clashes.append(job)
            running[job] = pid
        elif event == "end":
            running.pop(job, None)
    return [f"job dirs run by two processes at once: {clashes}"] if clashes else []


def confirmations_once(scenario: Scenario, sweep_dir: Path, trials: Trials, killed: set[int]) -> list[str]:
    ends = [job for event, job, _ in job_events(sweep_dir) if event == "end" and job.startswith("confirm_")]
    twice = sorted({job for job in ends if ends.count(job) > 1})
    return [f"confirmation jobs run to the end twice: {twice}"] if twice else []


def records_match(scenario: Scenario, sweep_dir: Path, trials: Trials, killed: set[int]) -> list[str]:
    wrong = []
    for result in sweep_dir.glob("*/result.json"):
        recorded = yaml.safe_load((result.parent / ".hydra" / "overrides.yaml").read_text())
        if recorded != json.loads(result.read_text())["overrides"]:
            wrong.append(result.parent.name)
    return [f"job records that name another command than their result's: {wrong}"] if wrong else []


def configuration(overrides: list[str]) -> tuple[str, ...]:
    return tuple(sorted(o for o in overrides if not o.startswith("seed=")))


def summary_matches(scenario: Scenario, sweep_dir: Path, trials: Trials, killed: set[int]) -> list[str]:
    """sweep_groups.csv has one row per distinct configuration of the search's jobs; best.yaml is the best mean
    over the finished configurations (the confirmed ones when there are)."""
    results = {p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/result.json")}
    searched = {n: r for n, r in results.items() if not n.startswith("confirm_")}
    confirmed = {n: r for n, r in results.items() if n.startswith("confirm_")}
    if not searched:
        return []
    found = []
    groups_file = sweep_dir / "sweep_groups.csv"
    rows = groups_file.read_text().splitlines()[1:] if groups_file.is_file() else []
    # the groups of every job dir (a cut job's too), not only those with a result
    configurations = {
        configuration(yaml.safe_load(p.read_text())) for p in sweep_dir.glob("[0-9]*/.hydra/overrides.yaml")
    }
    if len(rows) != len(configurations):
        found.append(f"sweep_groups.csv has {len(rows)} rows for {len(configurations)} configurations")
    pool = confirmed or searched
    by_config: dict[tuple[str, ...], list[float]] = {}
    for result in pool.values():
        by_config.setdefault(configuration(result["overrides"]), []).append(result["value"])
    if confirmed:  # a configuration counts once every seed of it finished
        by_config = {c: v for c, v in by_config.items() if len(v) == 2}
    best = min((statistics.fmean(v) for v in by_config.values()), default=None)
    best_file = sweep_dir / "best.yaml"
    if best is not None:
        header = best_file.read_text().splitlines()[1] if best_file.is_file() else ""
        value = float(header.split("val/value = ")[1].split()[0].rstrip(",")) if "val/value = " in header else None
        if value is None or not math.isclose(value, best):
            found.append(f"best.yaml says {value}, the best finished configuration's mean is {best}")
    return found


CHECKS: list[Callable[[Scenario, Path, Trials, set[int]], list[str]]] = [
    nothing_left_open,
    grid_complete_once,
    dead_trials_retried,
    budget_kept,
    no_dir_run_twice_at_once,
    confirmations_once,
    records_match,
    summary_matches,
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--storage", nargs="+", default=["journal", "sqlite"], choices=["journal", "sqlite"])
    parser.add_argument("--dir", type=Path, default=Path("chaos"))
    args = parser.parse_args()
    broken = 0
    for seed in range(args.first_seed, args.first_seed + args.scenarios):
        scenario = Scenario.draw(seed, args.storage[seed % len(args.storage)])
        root = args.dir / f"{seed}_{scenario.storage}"
        url = (
            f"sqlite:///{root / 'study.db'}" if scenario.storage == "sqlite" else str(root / "sweep" / "optuna.journal")
        )
        found = run(scenario, root, url)
        broken += bool(found)
        print(f"seed {seed} {scenario}: {found or 'ok'}", flush=True)
    print(f"{args.scenarios} scenarios, {broken} with violations")
    os._exit(1 if broken else 0)


if __name__ == "__main__":
    main()
