"""hydra-optuna-sweeper's example apps, run unchanged against tunelab's sweeper (apps in tests/optuna_apps).

Each test holds what that plugin's own test suite (1.4.0.dev6) asserts of the same app: the apps import
nothing of tunelab, and their configs use only the plugin's keys.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

APPS = Path(__file__).parent / "optuna_apps"


def run_app(app: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(APPS / app), "--multirun", *args]
    return subprocess.run(command, cwd=APPS, capture_output=True, text=True, timeout=1800)


def results(sweep_dir: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(sweep_dir / "optimization_results.yaml"))


@pytest.mark.parametrize("with_command_line", [True, False])
def test_the_sphere_with_tpe_and_sqlite_finds_a_good_point(with_command_line, tmp_path):
    storage = f"sqlite:///{tmp_path / 'test.db'}"
    args = [
        "hydra.job.chdir=True",
        "hydra.sweeper.n_trials=20",
        "hydra.sweeper.n_jobs=1",
        f"hydra.sweep.dir={tmp_path}",
    ]
    args += [
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=sphere-test",
        "hydra.sweeper.sampler.seed=123",
    ]
    args += ["hydra/sweeper/sampler=tpe", "~z"]
    if with_command_line:
        args += ["x=choice(0, 1, 2)", "y=0"]  # a space on the command line, and a fixed key
    result = run_app("sphere.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    found = results(tmp_path)
    best = optuna.load_study(study_name="sphere-test", storage=storage).best_trial
    assert found["name"] == "optuna" and found["best_value"] == best.value
    assert found["best_params"] == best.params
    if with_command_line:  # the fixed key is no parameter; x keeps its type
        assert "y" not in best.params and best.params["x"] in (0, 1, 2) and isinstance(best.params["x"], int)
    # the bound the plugin's suite uses: the 95th percentile of TPE's best value over 1000 seeds
    assert found["best_value"] <= 2.27


@pytest.mark.parametrize("n_trials", [10, 1])
def test_the_grid_sampler_visits_each_point_once(n_trials, tmp_path):
    storage = f"sqlite:///{tmp_path / 'test.db'}"
    args = ["--config-name=grid", f"hydra.sweep.dir={tmp_path}", f"hydra.sweeper.n_trials={n_trials}"]
    result = run_app("sphere.py", *args, f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=grid")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = optuna.load_study(study_name="grid", storage=storage).trials
    points = [(t.params["x"], t.params["y"], t.params["z"]) for t in trials]
    assert len(points) == min(n_trials, 8) == len(set(points))  # n_trials capped at the grid's 8 points
    if n_trials >= 8:
        assert set(points) == set(itertools.product([-1, 1], [-1.0, 0.0], ["foo", "bar"]))
    found = results(tmp_path)
    assert found["best_params"]["z"] in ("foo", "bar")
    if n_trials >= 8:
        assert found["best_value"] == 1 and abs(found["best_params"]["x"]) == 1 and found["best_params"]["y"] == 0
    else:
        assert found["best_params"]["x"] in (-1, 1) and found["best_params"]["y"] in (-1, 0)


def dominates(a: list[float], b: list[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("with_command_line", [True, False, "nsgaiii"])
def test_nsga_ii_with_two_objectives_writes_a_non_dominated_front(with_command_line, tmp_path):
    """Also NSGA-III, with the keys hydra-optuna-sweeper 1.4's configs added (crossover, constraints_func)."""
    args = ["hydra.job.chdir=True", f"hydra.sweep.dir={tmp_path}", "hydra.sweeper.n_trials=20"]
    if with_command_line == "nsgaiii":
        args += ["hydra/sweeper/sampler=nsgaiii", "hydra.sweeper.sampler.population_size=10"]
        args += ["+hydra.sweeper.sampler.crossover._target_=optuna.samplers.nsgaii.BLXAlphaCrossover"]
        args += [
            "hydra.sweeper.sampler.reference_points=[[0.0,1.0],[1.0,0.0]]",
            "hydra.sweeper.sampler.constraints_func=null",
        ]
    elif with_command_line:
        args += ["x=range(0, 5)", "y=range(0, 3)"]  # integer spaces
    result = run_app("two_objectives.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    front = results(tmp_path)["solutions"]
    assert len(front) >= 2  # the objectives conflict: more than one trial is best
    steps = {0} if with_command_line is True else {0, 0.5}
    for a in front:
        assert a["params"]["x"] % 1 in steps and a["params"]["y"] % 1 in steps
        assert not any(dominates(b["values"], a["values"]) for b in front)


def test_a_custom_search_space_adds_conditional_parameters(tmp_path):
    args = ["hydra.job.chdir=True", f"hydra.sweep.dir={tmp_path}", "hydra/sweeper/sampler=random"]
    result = run_app("conditional.py", *args, "hydra.sweeper.sampler.seed=123", "max_z_difference_from_x=0.3")
    assert result.returncode == 0, result.stderr[-3000:]
    best = results(tmp_path)["best_params"]
    assert abs(best["x"] - best["z"]) <= 0.3 and 0 <= best["+w"] <= 1


@pytest.mark.parametrize("max_failure_rate", [0.5, 1.0])
def test_max_failure_rate_stops_the_search_with_the_jobs_error(max_failure_rate, tmp_path):
    args = [
        "hydra.job.chdir=True",
        f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.n_trials=20",
        "hydra.sweeper.n_jobs=2",
    ]
    args += ["hydra/sweeper/sampler=random", f"hydra.sweeper.max_failure_rate={max_failure_rate}", "+error=true"]
    result = run_app("sphere.py", *args)
    jobs = list(tmp_path.glob("*/.hydra"))
    if max_failure_rate < 1.0:  # stopped after the first pair of trials, in one line with the job's error
        assert result.returncode == 1 and len(jobs) == 2
        (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
        assert "2 of 2 trials failed" in line and "RuntimeError: cfg.error is True" in line
    else:  # every trial ran and failed; the error is no cause to stop
        assert result.returncode == 0 and len(jobs) == 20
        assert "RuntimeError: cfg.error is True" not in result.stderr


def test_a_rejected_result_fails_its_trial_and_the_search_goes_on(tmp_path):
    """As hydra-optuna-sweeper 1.4 does: a value the study cannot take (here two values for one objective) fails
    that trial, and the search goes on whatever max_failure_rate says; that rate counts jobs that failed."""
    args = [f"hydra.sweep.dir={tmp_path}", "hydra.sweeper.direction=minimize", "hydra.sweeper.n_trials=4"]
    result = run_app("two_objectives.py", *args, "hydra.sweeper.max_failure_rate=0.0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list(tmp_path.glob("*/.hydra"))) == 4
    assert result.stdout.count("not a finite number") == 4  # each trial failed, saying why


def test_motpe_is_refused_in_one_line(tmp_path):
    result = run_app("sphere.py", f"hydra.sweep.dir={tmp_path}", "hydra/sweeper/sampler=motpe")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "error: hydra/sweeper/sampler=motpe: The 'motpe' sampler was removed in Optuna 4.0; "
        "use hydra/sweeper/sampler=tpe, which optimizes several objectives (direction: [...])"
    ]
