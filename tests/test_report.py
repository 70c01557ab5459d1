"""The search report (tunelab.report): importances and Optuna's plots of a study, in the sweep dir and TensorBoard."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import optuna
import pytest
from conftest import dashboard_server
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tunelab.report import main as report_main

PNG = b"\x89PNG\r\n\x1a\n"
SWEEPER = "hydra_plugins.tunelab_optuna.optuna_sweeper.OptunaSweeper"


def make_sweep(root: Path, directions: list[str], trials: int, failed: int = 0, pruned: int = 0) -> None:
    """A sweep dir as the Optuna sweeper leaves it: multirun.yaml naming a journal study, with FAIL and PRUNED
    trials, every trial reporting intermediate values."""
    root.mkdir()
    storage = "${hydra.sweep.dir}/optuna.journal"  # as conf/hydra/sweeper/tunelab.yaml writes it
    sweeper = {"_target_": SWEEPER, "storage": storage, "study_name": "s", "direction": directions}
    metrics = ["val/mse", "model/params"][: len(directions)]
    config = {"optimized_metric": metrics if len(metrics) > 1 else metrics[0], "hydra": {"sweeper": sweeper}}
    OmegaConf.save(OmegaConf.create(config), root / "multirun.yaml")
    backend = optuna.storages.journal.JournalFileBackend(str(root / "optuna.journal"))
    study = optuna.create_study(study_name="s", storage=optuna.storages.JournalStorage(backend), directions=directions)
    study.sampler = optuna.samplers.RandomSampler(seed=0)
    for n in range(trials + failed + pruned):
        trial = study.ask()
        lr = trial.suggest_float("optimizer.lr", 1e-4, 1e-1, log=True)
        width = trial.suggest_categorical("model.net.hidden_sizes", ["[32]", "[64]"])
        dropout = trial.suggest_float("model.net.dropout", 0.0, 0.5)
        value = (lr - 0.01) ** 2 * 1e3 + dropout * 0.01 + (width == "[32]") * 0.1
        for step in range(3 if len(directions) == 1 else 0):  # Optuna takes no intermediate values of several
            trial.report(value + (2 - step) * 0.1, step)
        if n < trials:
            study.tell(trial, [value, 32.0 if width == "[32]" else 64.0][: len(directions)])
        else:
            state = optuna.trial.TrialState.FAIL if n < trials + failed else optuna.trial.TrialState.PRUNED
            study.tell(trial, state=state)


def report(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunelab.report", str(root), *args], capture_output=True, text=True)


def test_a_search_with_failed_and_pruned_trials_gets_importances_plots_and_tensorboard_images(tmp_path):
    root = tmp_path / "sweep"
    make_sweep(root, ["minimize"], trials=8, failed=2, pruned=2)
    (root / "sweep_summary.md").write_text("tables\n\n## Search report\n\nOLD REPORT\n")
    report_main([str(root)])  # in this process; the command line's own process: the refusal test below
    folder = root / "report"
    names = ["history", "parallel_coordinates", "importances", "slices", "intermediate_values"]
    for name in names:
        data = (folder / f"{name}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 5000, name
    with open(folder / "importances.csv") as f:
        importances = {r["parameter"]: float(r["importance"]) for r in csv.DictReader(f)}
    assert set(importances) == {"optimizer.lr", "model.net.hidden_sizes", "model.net.dropout"}
    assert sum(importances.values()) == pytest.approx(1.0)
    summary = (root / "sweep_summary.md").read_text()
    assert summary.startswith("tables\n\n## Search report") and "OLD REPORT" not in summary  # the report replaced
    assert "12 trials, 8 finished" in summary and "![history](report/history.png)" in summary
    events = EventAccumulator(str(folder), size_guidance={"images": 0})
    events.Reload()
    assert {f"search/{name}" for name in names} <= set(events.Tags()["images"])

    report_main([str(root), "--importance", "fanova"])  # written anew: one event file, fANOVA's numbers
    assert len(list(folder.glob("events.out.tfevents.*"))) == 1
    assert "(fanova; each column sums to 1)" in (root / "sweep_summary.md").read_text()


def test_a_one_trial_study_gets_a_report_without_importances(tmp_path):
    root = tmp_path / "sweep"
    make_sweep(root, ["minimize"], trials=1)
    result = report(root)
    assert result.returncode == 0, result.stderr[-3000:]
    text = (root / "report" / "report.md").read_text()
    assert "Importances need at least 2 finished trials" in text and (root / "report" / "history.png").is_file()
    assert not (root / "report" / "importances.csv").exists()


def test_a_two_objective_study_gets_its_pareto_front_and_importances_per_objective(tmp_path):
    root = tmp_path / "sweep"
    make_sweep(root, ["minimize", "minimize"], trials=6, failed=1)
    result = report(root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (root / "report" / "pareto_front.png").read_bytes().startswith(PNG)
    with open(root / "report" / "importances.csv") as f:
        rows = list(csv.DictReader(f))
    for objective in ("val/mse", "model/params"):
        assert sum(float(r["importance"]) for r in rows if r["objective"] == objective) == pytest.approx(1.0)


def make_grid_sweep(root: Path, command: list[str], jobs: list[dict[str, str]], values: list[float]) -> None:
    """A grid sweep's dir as train.py -m leaves it (no study): multirun.yaml with its command line, and one job dir
    per entry of `jobs` (its overrides) with its val/mse."""
    root.mkdir()
    config = {"optimized_metric": "val/mse", "hydra": {"overrides": {"task": command}}}
    OmegaConf.save(OmegaConf.create(config), root / "multirun.yaml")
    for n, (overrides, value) in enumerate(zip(jobs, values, strict=True)):
        (root / f"{n}_job" / ".hydra").mkdir(parents=True)
        (root / f"{n}_job" / ".hydra" / "overrides.yaml").write_text(
            yaml_list([f"{k}={v}" for k, v in overrides.items()])
        )
        summary = {"status": "ok", "metrics": {"val/mse": value}, "optimized_metric": "val/mse"}
        (root / f"{n}_job" / "metrics.json").write_text(json.dumps(summary))


def yaml_list(items: list[str]) -> str:
    return "".join(f"- {item}\n" for item in items)


def test_the_seed_of_a_seed_sweep_is_no_parameter_whose_importance_is_ranked(tmp_path):
    """Issue 44, defect 7: with lr 0.05 / 2.0 x seeds 0-3, where every lr=2.0 job beats every lr=0.05 job,
    PED-ANOVA ranked the seed first (.571 against .429); and 8 trials give its top 10% one trial."""
    root = tmp_path / "sweep"
    jobs = [{"optimizer.lr": lr, "seed": str(seed)} for lr in ("0.05", "2.0") for seed in range(4)]
    values = [1.0 + 0.01 * seed for seed in range(4)] + [0.5 + 0.1 * seed for seed in range(4)]
    make_grid_sweep(root, ["optimizer.lr=0.05,2.0", "seed=0,1,2,3"], jobs, values)
    report_main([str(root)])  # in this process: `python -m tunelab.report` costs seconds of imports
    with open(root / "report" / "importances.csv") as f:
        assert [r["parameter"] for r in csv.DictReader(f)] == ["optimizer.lr"]
    text = (root / "report" / "report.md").read_text()
    assert "Few trials for PED-ANOVA: its top 10% of 8 finished trials holds 1 (Optuna advises at least 5" in text


def test_the_numbers_of_a_sweep_without_a_study_stay_numbers(tmp_path):
    """Issue 44, defect 8: a grid (or a search kept in memory) made every swept value a category in string order
    (lr .0515, .0138, .0290 bottom to top; "128" before "16"). Numbers stay numeric, log where tagged."""
    from tunelab.sweeps.jobs import sweep_inputs
    from tunelab.sweeps.report import grid_study, log_scaled

    root = tmp_path / "sweep"
    lrs, widths = ("0.0515", "0.0138", "0.029", "0.0022"), ("128", "16")
    jobs = [{"optimizer.lr": lr, "model.net.hidden_size": w, "optimizer": "adam"} for lr in lrs for w in widths]
    command = ["optimizer.lr=tag(log,choice(0.0515,0.0138,0.029,0.0022))", "model.net.hidden_size=128,16"]
    jobs[0]["optimizer"] = "sgd"
    make_grid_sweep(root, command, jobs, [float(i) for i in range(len(jobs))])
    config = OmegaConf.load(root / "multirun.yaml")
    rows, objectives, signs = sweep_inputs(config, root)
    study = grid_study(rows, objectives, signs, log_scaled(config))
    distributions = study.trials[0].distributions
    assert distributions["optimizer.lr"] == optuna.distributions.FloatDistribution(0.0022, 0.0515, log=True)
    assert distributions["model.net.hidden_size"] == optuna.distributions.IntDistribution(16, 128)
    assert distributions["optimizer"] == optuna.distributions.CategoricalDistribution(["adam", "sgd"])
    assert study.trials[0].params == {"optimizer.lr": 0.0515, "model.net.hidden_size": 128, "optimizer": "sgd"}


def test_a_dir_that_is_no_sweep_is_refused_in_one_line(tmp_path):
    result = report(tmp_path)
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"error: {tmp_path}: no multirun.yaml; is it the sweep dir of a python train.py -m run?"
    ]


def test_optuna_dashboard_serves_the_journal_of_a_sweep(tmp_path):
    """`optuna-dashboard <sweep dir>/optuna.journal` (README), as a real server on loopback, read over HTTP."""
    pytest.importorskip("optuna_dashboard")
    root = tmp_path / "sweep"
    make_sweep(root, ["minimize"], trials=3, failed=1, pruned=1)
    with dashboard_server(root / "optuna.journal") as url:
        (study,) = json.load(urllib.request.urlopen(f"{url}/api/studies", timeout=30))["study_summaries"]
        detail = json.load(urllib.request.urlopen(f"{url}/api/studies/{study['study_id']}", timeout=30))
    assert study["study_name"] == "s"
    backend = optuna.storages.journal.JournalFileBackend(str(root / "optuna.journal"))
    stored = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(backend)).trials
    served = {t["number"]: t for t in detail["trials"]}
    assert sorted(t["state"] for t in served.values()) == ["Complete", "Complete", "Complete", "Fail", "Pruned"]
    for trial in stored:
        assert served[trial.number]["state"].upper() == trial.state.name
        if trial.value is not None:
            assert served[trial.number]["values"] == [pytest.approx(trial.value)]
