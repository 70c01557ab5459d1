"""Hydra multiruns as users start them: grid, Optuna (resumed), a failing job, joblib in parallel."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
from conftest import SHARED_DATA, SYNTHETIC, run_train

FAST = [
    *SYNTHETIC,
    "debug=limit",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def sweep_root(log_dir: Path) -> Path:
    (root,) = (log_dir / "train" / "multiruns").iterdir()
    return root


def summary(root: Path) -> list[dict]:
    with open(root / "sweep_summary.csv") as f:
        return list(csv.DictReader(f))


def test_grid_sweep_writes_a_sorted_summary_and_a_reusable_best_config(tmp_path):
    log_dir = tmp_path / "logs"
    result = run_train(
        ["-m", "optimizer=sgd,adam", "scheduler=step,cosine", *FAST, f"paths.log_dir={log_dir}"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(log_dir)
    rows = summary(root)
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    combos = {tuple(o for o in r["overrides"].split() if o.startswith(("optimizer=", "scheduler="))) for r in rows}
    assert combos == {(f"optimizer={o}", f"scheduler={s}") for o in ("sgd", "adam") for s in ("step", "cosine")}
    values = [float(r["val/mse"]) for r in rows]
    assert values == sorted(values)  # best first
    assert len({r["job"] for r in rows}) == 4 and (root / "sweep_summary.md").is_file()

    # best.yaml is an experiment config that composes to the best job's settings
    experiments = tmp_path / "extra" / "experiment"
    experiments.mkdir(parents=True)
    (experiments / "best.yaml").write_text((root / "best.yaml").read_text())
    shown = run_train(
        ["--cfg", "job", "experiment=best", f"hydra.searchpath=[file://{tmp_path / 'extra'}]"], cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    best = rows[0]["overrides"]
    assert f"_target_: torch.optim.{'SGD' if 'optimizer=sgd' in best else 'Adam'}" in shown.stdout
    assert f"name: {'step' if 'scheduler=step' in best else 'cosine'}" in shown.stdout


def test_a_failing_job_does_not_stop_the_sweep(tmp_path):
    log_dir = tmp_path / "logs"
    result = run_train(["-m", "optimizer.lr=0.01,-1,0.001", *FAST, f"paths.log_dir={log_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary(sweep_root(log_dir))
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]  # failed last
    assert "optimizer.lr must be a positive number" in rows[-1]["error"]
    assert rows[-1]["overrides"].startswith("optimizer.lr=-1")


def test_optuna_study_resumes_from_sqlite(tmp_path):
    log_dir = tmp_path / "logs"
    common = [
        "hparams_search=etth1_optuna",
        f"paths.data_dir={SHARED_DATA}",
        "debug=limit",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    first = run_train(["-m", *common, "hydra.sweeper.n_trials=3", f"paths.log_dir={log_dir}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    root = sweep_root(log_dir)
    second = run_train(["-m", *common, "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={root}"], cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    with sqlite3.connect(root / "optuna.db") as db:
        states = [s for (s,) in db.execute("select state from trials")]
    assert len(states) == 5 and states.count("COMPLETE") >= 4
    rows = summary(root)
    assert len(rows) == 5 and len({r["job"] for r in rows}) == 5  # the resumed jobs got new dirs


def test_joblib_runs_jobs_in_parallel_in_distinct_dirs(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    log_dir = tmp_path / "logs"
    result = run_train(
        ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2", *FAST, f"paths.log_dir={log_dir}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(log_dir)  # one root, although each worker resolved the sweep dir itself
    rows = summary(root)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"ok"}
    logs = [(root / r["job"] / "train.log").read_text() for r in rows]
    assert all("Run directory" in text for text in logs) and rows[0]["job"] != rows[1]["job"]


def test_submitit_local_runs_a_two_job_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    log_dir = tmp_path / "logs"
    result = run_train(
        ["-m", "hydra/launcher=submitit_local", "seed=1,2", *FAST, f"paths.log_dir={log_dir}"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary(sweep_root(log_dir))
    assert len(rows) == 2 and {r["status"] for r in rows} == {"ok"} and rows[0]["job"] != rows[1]["job"]
