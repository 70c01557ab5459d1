"""The confirmation phase of an Optuna search: its best configurations run again on several seeds."""

from __future__ import annotations

import csv
import json
import statistics

from test_sweeps import search, study_trials, summary, sweep_root

CONFIRM = ["hydra.sweeper.confirm.top_k=2", "hydra.sweeper.confirm.seeds=[0,1]", "hydra.sweeper.n_trials=3"]


def test_the_best_configurations_run_on_each_seed_and_best_yaml_is_the_best_mean(tmp_path):
    result = search(tmp_path, *CONFIRM, "pruner=median", "hydra.callbacks.sweep_summary.report=true", scaler="standard")
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(tmp_path / "logs")
    trials = study_trials(root)
    assert len(trials) == 3  # confirmation jobs are no trials of the study: nothing prunes them
    ranked = sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)[:2]
    dirs = sorted(p.name for p in root.glob("confirm_*"))
    assert dirs == sorted(f"confirm_{t.number}_seed{s}" for t in ranked for s in (0, 1))
    means = {}
    for trial in ranked:
        jobs = [json.loads((root / f"confirm_{trial.number}_seed{s}" / "metrics.json").read_text()) for s in (0, 1)]
        assert [j["status"] for j in jobs] == ["ok", "ok"]
        means[trial.number] = statistics.fmean(j["metrics"]["val/mse"] for j in jobs)
        lr = (root / f"confirm_{trial.number}_seed1" / ".hydra" / "overrides.yaml").read_text()
        assert f"optimizer.lr={trial.params['optimizer.lr']}" in lr and "seed=1" in lr

    with open(root / "sweep_confirmed.csv") as f:
        confirmed = list(csv.DictReader(f))
    assert [float(r["val/mse"]) for r in confirmed] == sorted(means.values())
    assert [r["confirmed rank"] for r in confirmed] == ["1", "2"]
    assert sorted(r["search rank"] for r in confirmed) == ["1", "2"]
    winner = min(means, key=means.get)
    header = (root / "best.yaml").read_text().splitlines()[1]
    assert f"val/mse = {means[winner]}" in header and f"confirm_{winner}_seed0" in header
    assert "Confirmed on seeds 0, 1" in (root / "sweep_summary.md").read_text()
    assert len(summary(root)) == 3 + 4  # every job, the confirmation's too
    report = (root / "report" / "report.md").read_text()  # of the search's trials, not the confirmation's jobs
    assert report.startswith("## Search report\n\n3 trials, 3 finished") and (root / "report" / "history.png").is_file()

    # started again on its sweep dir with no new trial: the confirmation jobs are found done, not rerun
    written = {p: p.stat().st_mtime_ns for p in root.glob("confirm_*/metrics.json")}
    again = search(tmp_path, *CONFIRM[:2], "hydra.sweeper.n_trials=0", f"hydra.sweep.dir={root}", scaler="standard")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in root.glob("confirm_*/metrics.json")} == written
    assert len(study_trials(root)) == 3
