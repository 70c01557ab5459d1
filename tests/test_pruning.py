"""Pruned Optuna searches (the `pruner` group) and several search processes sharing one study."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import run_train
from test_sweeps import search, study_trials, summary, sweep_root

EPOCHS = 4
# A learning rate that trains and one that clearly does not: after any validation the second is worse.
TWO_LRS = "choice(0.01, 1e-7)"
LONG = [f"trainer.max_epochs={EPOCHS}", "early_stopping=none", "hydra.sweeper.n_trials=8"]


def test_the_median_pruner_stops_clearly_worse_trials_early(tmp_path):
    median = ["pruner=median", "pruner.n_startup_trials=1", "pruner.n_warmup_steps=0"]
    # sampler seed 2: trial 0 draws the good rate, so the pruner has a finished good trial to compare with
    result = search(tmp_path, *LONG, *median, "hydra.sweeper.sampler.seed=2", scaler="standard", lr=TWO_LRS)
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(tmp_path / "logs")
    trials = study_trials(root)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and {t.state.name for t in trials} == {"COMPLETE", "PRUNED"}
    for trial in pruned:  # only the untrainable rate, stopped at a validation before the last epoch
        assert trial.params["optimizer.lr"] == 1e-07
        assert len(trial.intermediate_values) < EPOCHS
    for trial in trials:
        if trial.state.name == "COMPLETE":
            assert sorted(trial.intermediate_values) == list(range(EPOCHS))  # one report per validation

    rows = summary(root)
    assert sorted(r["status"] for r in rows) == sorted("pruned" if t in pruned else "ok" for t in trials)
    assert [r["status"] for r in rows] == sorted((r["status"] for r in rows), key=["ok", "pruned"].index)
    for row in rows:
        number = int(row["job"].split("_")[0])  # job dirs are named by trial number
        trial = trials[number]
        assert row["status"] == ("pruned" if trial.state.name == "PRUNED" else "ok")
        if row["status"] == "pruned":  # no test was run; the value it was pruned on is kept
            assert row["test/mse"] == "" and float(row["val/mse"]) == trial.intermediate_values[trial.last_step]
            assert int(row["epochs"]) < EPOCHS
    best = json.loads((root / rows[0]["job"] / "metrics.json").read_text())
    assert best["status"] == "ok" and "test/mse" in best["metrics"]


def test_pruner_none_runs_every_trial_to_the_end(tmp_path):
    result = search(tmp_path, *LONG, "hydra.sweeper.n_trials=4", "pruner=none", scaler="standard", lr=TWO_LRS)
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(tmp_path / "logs")
    trials = study_trials(root)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    assert all(sorted(t.intermediate_values) == list(range(EPOCHS)) for t in trials)
    assert [r["status"] for r in summary(root)] == ["ok"] * 4 and all(r["test/mse"] for r in summary(root))


@pytest.mark.slow(reason="two search processes at once, as two SLURM tasks: 30 s of two processes on two cores")
def test_two_search_processes_share_one_study(tmp_path):
    root = tmp_path / "logs" / "shared_search"
    args = ["hydra.sweeper.n_trials=3", f"hydra.sweep.dir={root}", "pruner=median"]
    with ThreadPoolExecutor(2) as pool:  # two workers started at once, as N SLURM tasks would be
        results = list(pool.map(lambda _: search(tmp_path, *args, scaler="standard", runner=run_train), range(2)))
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    trials = study_trials(root)
    assert [t.number for t in trials] == list(range(6)) and {t.state.name for t in trials} == {"COMPLETE"}
    assert len({t.params["optimizer.lr"] for t in trials}) == 6  # the workers drew different parameters
    rows = summary(root)
    assert sorted(int(r["job"].split("_")[0]) for r in rows) == list(range(6))  # one summary holds every trial
    assert {r["status"] for r in rows} == {"ok"}
