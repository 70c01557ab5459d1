"""bench/recipe_search.py's account of a search: counts from its study, the winner chosen on validation only."""

from __future__ import annotations

import json

import optuna
from conftest import load_bench

from tunelab.training.optuna_storage import open_storage

recipe_search = load_bench("recipe_search")
driver = load_bench("driver")


def test_the_account_counts_the_study_and_picks_the_confirmed_winner_on_mean_validation(tmp_path):
    studies, csv = tmp_path / "searches", tmp_path / "etth1.csv"
    studies.mkdir()
    study = optuna.create_study(
        study_name="etth1_s96_search", storage=open_storage(str(studies / "etth1_s96_search.journal"))
    )
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for value in (0.12, 0.09, 0.10):
        study.add_trial(optuna.trial.create_trial(params={"x": value}, distributions=space, value=value))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, intermediate_values={0: 0.2}))
    (studies / "etth1_s96_search.json").write_text(
        json.dumps([{"minutes": 12.4, "workers": 2}, {"minutes": 3.0, "workers": 2}])
    )
    (studies / "etth1_s96_search").mkdir()
    (studies / "etth1_s96_search" / "importances.csv").write_text(
        "objective,parameter,importance\nval/mse,x,0.7\nval/mse,y,0.3\n"
    )
    # trial 1: the lower mean val/mse; trial 2: the lower test, which must not choose
    for trial, val, test in ((1, 0.090, 0.056), (2, 0.095, 0.050)):
        for seed in range(3):
            row = {"recipe": "etth1_s96/v4", "model": "", "overrides": f"x={trial}", "seed": seed, "val/mse": val,
                   "test/mse": test, "test/mae": 0.18, "minutes": 1.0, "machine": "CPU test",
                   "source": f"etth1_s96_search trial {trial}"}  # fmt: skip
            driver.append_row(csv, row, recipe_search.ETTH1.fields)
    text = recipe_search.account(studies, csv)
    line = next(line for line in text.splitlines() if line.startswith("| etth1_s96_search | 4 / 1 / 0 |"))
    assert "| 15 (2) | 0.0900 | 1 | 0.0900 ± 0.0000 | 0.0560 ± 0.0000 |" in line and line.endswith("| x 0.70, y 0.30 |")
    assert "| etth1_s96_search | 1 | `x=1` |" in text
