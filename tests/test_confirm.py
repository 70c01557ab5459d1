"""The confirmation phase of an Optuna search: its best configurations run again on several seeds."""

from __future__ import annotations

import csv
import json
import statistics

from test_sweeps import search, study_trials, summary, sweep_root

CONFIRM = ["hydra.sweeper.confirm.top_k=2", "hydra.sweeper.confirm.seeds=[0,1]", "hydra.sweeper.n_trials=3"]


def confirm_dir(root, trial: int, seed: int):
    """The job dir of a confirmation: confirm_<trial>_seed<seed>_<digest of its overrides>."""
    (found,) = root.glob(f"confirm_{trial}_seed{seed}_*")
    return found


def test_the_best_configurations_run_on_each_seed_and_best_yaml_is_the_best_mean(tmp_path):
    result = search(tmp_path, *CONFIRM, "pruner=median", "hydra.callbacks.sweep_summary.report=true", scaler="standard")
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(tmp_path / "logs")
    trials = study_trials(root)
    assert len(trials) == 3  # confirmation jobs are no trials of the study: nothing prunes them
    ranked = sorted((t for t in trials if t.state.name == "COMPLETE"), key=lambda t: t.value)[:2]
    dirs = sorted(p.name for p in root.glob("confirm_*"))
    assert dirs == sorted(confirm_dir(root, t.number, s).name for t in ranked for s in (0, 1))
    means = {}
    for trial in ranked:
        jobs = [json.loads((confirm_dir(root, trial.number, s) / "metrics.json").read_text()) for s in (0, 1)]
        assert [j["status"] for j in jobs] == ["ok", "ok"]
        means[trial.number] = statistics.fmean(j["metrics"]["val/mse"] for j in jobs)
        lr = (confirm_dir(root, trial.number, 1) / ".hydra" / "overrides.yaml").read_text()
        assert f"optimizer.lr={trial.params['optimizer.lr']}" in lr and "seed=1" in lr

    with open(root / "sweep_confirmed.csv") as f:
        confirmed = list(csv.DictReader(f))
    assert [float(r["val/mse"]) for r in confirmed] == sorted(means.values())
    assert [r["confirmed rank"] for r in confirmed] == ["1", "2"]
    assert sorted(r["search rank"] for r in confirmed) == ["1", "2"]
    winner = min(means, key=means.get)
    header = (root / "best.yaml").read_text().splitlines()[1]
    assert f"val/mse = {means[winner]}" in header and confirm_dir(root, winner, 0).name in header
    assert "Confirmed on seeds 0, 1" in (root / "sweep_summary.md").read_text()
    assert len(summary(root)) == 3 + 4  # every job, the confirmation's too
    report = (root / "report" / "report.md").read_text()  # of the search's trials, not the confirmation's jobs
    assert report.startswith("## Search report\n\n3 trials, 3 finished") and (root / "report" / "history.png").is_file()

    # started again on its sweep dir with no new trial: the confirmation jobs are found done, not rerun
    written = {p: p.stat().st_mtime_ns for p in root.glob("confirm_*/metrics.json")}
    same = [*CONFIRM[:2], "pruner=median", "hydra.sweeper.n_trials=0"]  # the same jobs (n_trials is no job's)
    again = search(tmp_path, *same, f"hydra.sweep.dir={root}", scaler="standard")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in root.glob("confirm_*/metrics.json")} == written
    assert len(study_trials(root)) == 3
