"""Hydra multiruns as users start them: grid, Optuna (failures, resume, storage), a failing job, joblib."""

from __future__ import annotations

import csv
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import torch
from cifar_fixture import write_archive
from conftest import SYNTHETIC, compose_cfg, run_app, run_train
from omegaconf import OmegaConf
from test_report import make_grid_sweep

from tunelab.cli import train_argv
from tunelab.sweeps.jobs import split_overrides, sweep_inputs
from tunelab.sweeps.ranking import group_rows, sort_key
from tunelab.sweeps.tables import to_markdown
from tunelab.training.hydra_hooks import resolvers
from tunelab.training.run.hparams import run_hparams

SHORT = ["debug=limit", "logger=none", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
FAST = [*SYNTHETIC, *SHORT]


def sweep_root(log_dir: Path) -> Path:
    (root,) = (log_dir / "train" / "multiruns").iterdir()
    return root


def summary(root: Path, name: str = "sweep_summary.csv") -> list[dict]:
    with open(root / name) as f:
        return list(csv.DictReader(f))


def test_grid_sweep_writes_a_sorted_summary_and_a_reusable_best_config(tmp_path):
    log_dir = tmp_path / "logs"
    result = run_app(
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
    shown = run_app(
        ["--cfg", "job", "experiment=best", f"hydra.searchpath=[file://{tmp_path / 'extra'}]"], cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    best = rows[0]["overrides"]
    assert f"_target_: torch.optim.{'SGD' if 'optimizer=sgd' in best else 'Adam'}" in shown.stdout
    assert f"name: {'step' if 'scheduler=step' in best else 'cosine'}" in shown.stdout


def test_a_failing_job_does_not_stop_the_sweep_nor_its_report(tmp_path):
    log_dir = tmp_path / "logs"
    report = "hydra.callbacks.sweep_summary.report=true"
    result = run_app(["-m", "optimizer.lr=0.01,-1,0.001", *FAST, f"paths.log_dir={log_dir}", report], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary(sweep_root(log_dir))
    assert [r["status"] for r in rows] == ["ok", "ok", "failed"]  # failed last
    assert "optimizer.lr must be a positive number" in rows[-1]["error"]
    assert rows[-1]["overrides"].startswith("optimizer.lr=-1")
    # a grid sweep's jobs as a study: the failed one counted, the two others in every figure
    markdown = (sweep_root(log_dir) / "sweep_summary.md").read_text()
    assert "## Search report\n\n3 trials, 2 finished" in markdown and "![slices](report/slices.png)" in markdown
    assert (sweep_root(log_dir) / "report" / "parallel_coordinates.png").is_file()


SEARCH = """# @package _global_
defaults:
  - override /hydra/sweeper: tunelab
  - override /hydra/sweeper/sampler: random
optimized_metric: val/mse
hydra:
  sweeper:
    study_name: test
    n_trials: 6
    sampler:
      seed: 0
    params:
      data.scaler: {scaler}
      optimizer.lr: {lr}
"""


def search(
    tmp_path: Path,
    *args: str,
    scaler: str = "choice(standard, bogus)",
    lr: str = "tag(log, interval(1e-4, 1e-2))",
    runner: Callable = run_app,
):
    """`python train.py -m hparams_search=test ARGS` with the SEARCH space above, on the synthetic series
    (in this process; `runner=run_train` starts it as a user would, for what only a process shows)."""
    (tmp_path / "extra" / "hparams_search").mkdir(parents=True, exist_ok=True)
    (tmp_path / "extra" / "hparams_search" / "test.yaml").write_text(SEARCH.format(scaler=scaler, lr=lr))
    extra = [f"hydra.searchpath=[file://{tmp_path / 'extra'}]", f"paths.log_dir={tmp_path / 'logs'}"]
    return runner(["-m", "hparams_search=test", *FAST, *extra, *args], cwd=tmp_path)


def study_trials(root: Path, name: str = "test") -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(root / "optuna.journal")))
    return optuna.load_study(study_name=name, storage=storage).trials


JOBLIB_WAY = pytest.mark.slow(reason="joblib's worker processes (15 s); the fast tier runs joblib once, on a grid")


@pytest.mark.parametrize("launcher", ["basic", pytest.param("joblib", marks=JOBLIB_WAY)])
def test_an_optuna_search_records_failed_trials_and_goes_on(launcher, tmp_path):
    parallel = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2"]
    # joblib's workers are processes that import the app by name: that sweep starts as a user starts it
    runner = run_train if launcher == "joblib" else run_app
    result = search(tmp_path, *(parallel if launcher == "joblib" else []), runner=runner)
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(tmp_path / "logs")
    trials = study_trials(root)
    states = [t.state.name for t in trials]
    assert len(trials) == 6 and "RUNNING" not in states and {"COMPLETE", "FAIL"} <= set(states)
    for trial in trials:
        assert (trial.state.name == "FAIL") == (trial.params["data.scaler"] == "bogus")
        if trial.state.name == "FAIL":
            assert "data.scaler must be one of" in trial.user_attrs["error"]
    rows = summary(root)
    assert sorted(r["status"] for r in rows) == sorted("ok" if s == "COMPLETE" else "failed" for s in states)
    assert all("data.scaler must be one of" in r["error"] for r in rows if r["status"] == "failed")


def test_a_search_whose_every_trial_fails_exits_non_zero_in_one_line(tmp_path):
    result = search(tmp_path, "hydra.sweeper.n_trials=2", scaler="bogus", runner=run_train)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "all 2 jobs of the sweep failed" in errors[0] and "Traceback" not in result.stderr
    root = sweep_root(tmp_path / "logs")
    assert [t.state.name for t in study_trials(root)] == ["FAIL", "FAIL"]
    assert [r["status"] for r in summary(root)] == ["failed", "failed"]


def test_a_resumed_search_adds_only_new_parameter_sets(tmp_path):
    first = search(tmp_path, "hydra.sweeper.n_trials=3", "hydra/sweeper/sampler=tpe", scaler="standard")
    assert first.returncode == 0, first.stderr[-3000:]
    root = sweep_root(tmp_path / "logs")
    second = search(
        tmp_path,
        "hydra.sweeper.n_trials=2",
        "hydra/sweeper/sampler=tpe",
        f"hydra.sweep.dir={root}",
        scaler="standard",
    )
    assert second.returncode == 0, second.stderr[-3000:]
    trials = study_trials(root)
    assert [t.state.name for t in trials] == ["COMPLETE"] * 5
    lrs = [t.params["optimizer.lr"] for t in trials]
    assert len(set(lrs)) == 5  # the resumed trials replay none of the first three
    assert len({r["job"] for r in summary(root)}) == 5  # and got new dirs


def test_search_spaces_on_the_command_line_reach_the_jobs_typed(tmp_path):
    log_dir = tmp_path / "logs"
    spaces = ["optimizer.lr=tag(log, interval(1e-4, 1e-2))", "data.batch_size=choice(16, 32)"]
    args = ["-m", "hydra/sweeper=tunelab", "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=cli", *spaces]
    result = run_app([*args, *FAST, f"paths.log_dir={log_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(log_dir)
    trials = study_trials(root, "cli")
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial in trials:
        lr, batch_size = trial.params["optimizer.lr"], trial.params["data.batch_size"]
        assert isinstance(lr, float) and 1e-4 <= lr <= 1e-2 and batch_size in (16, 32)
        (job,) = root.glob(f"{trial.number}_*")
        job_cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
        assert job_cfg.optimizer.lr == lr and job_cfg.data.batch_size == batch_size


def test_any_rdb_url_holds_the_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    result = search(tmp_path, "hydra.sweeper.n_trials=2", f"hydra.sweeper.storage={url}", scaler="standard")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = optuna.load_study(study_name="test", storage=url).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hydra.sweeper.sampler._target_=optuna.samplers.NoSuchSampler", "hydra.sweeper.sampler (optuna.samplers"),
        ("hydra/sweeper/sampler=motpe", "The 'motpe' sampler was removed in Optuna 4.0; use hydra/sweeper/sampler=tpe"),
        ("hydra.sweeper.direction=[minimize,upward]", "hydra.sweeper.direction must be minimize or maximize"),
        ("hydra.sweeper.confirm.top_k=-1", "hydra.sweeper.confirm.top_k must be 0 (off) or more; got -1"),
        ("hydra.sweeper.confirm.seeds=[]", "hydra.sweeper.confirm.seeds must be a list of whole numbers"),
        ("hydra.sweeper.direction=[minimize,minimize]", "confirm.top_k: confirming needs one objective"),
    ],
)
def test_a_bad_sampler_or_direction_is_refused_in_one_line_before_any_trial(override, message, tmp_path):
    confirm = [] if "top_k" in override else ["hydra.sweeper.confirm.top_k=2"]
    result = search(tmp_path, override, *confirm, runner=run_train)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line
    assert not list((tmp_path / "logs").rglob("optuna.journal"))  # no study, so no trial left RUNNING


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


@pytest.mark.slow(reason="submitit starts a process per job and polls for it (15 s here)")
def test_submitit_local_runs_a_two_job_sweep(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    log_dir = tmp_path / "logs"
    result = run_train(
        ["-m", "hydra/launcher=submitit_local", "seed=1,2", *FAST, f"paths.log_dir={log_dir}"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = summary(sweep_root(log_dir))
    assert len(rows) == 2 and {r["status"] for r in rows} == {"ok"} and rows[0]["job"] != rows[1]["job"]


GROUPS_SEARCH = """# @package _global_
defaults:
  - override /model: gru
  - override /scheduler: exponential
  - override /hydra/sweeper: tunelab
optimized_metric: val/mae
early_stopping:
  patience: 7
model:
  net:
    hidden_sizes: [16]
hydra:
  sweeper:
    study_name: groups
    n_trials: 2
    params:
      optimizer.lr: tag(log, interval(1e-4, 1e-2))
"""


def test_best_yaml_composes_to_the_best_trials_config_key_for_key(tmp_path):
    """What the search config set (groups and values) is kept in best.yaml; only the sweep settings go."""
    extra = tmp_path / "extra"
    (extra / "hparams_search").mkdir(parents=True)
    (extra / "hparams_search" / "groups.yaml").write_text(GROUPS_SEARCH)
    searchpath = f"hydra.searchpath=[file://{extra}]"
    result = run_app(
        ["-m", "hparams_search=groups", "precision=64", *FAST, searchpath, f"paths.log_dir={tmp_path / 'logs'}"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(tmp_path / "logs")
    best_job = root / summary(root)[0]["job"]
    (extra / "experiment").mkdir()
    (extra / "experiment" / "best.yaml").write_text((root / "best.yaml").read_text())

    composed = OmegaConf.to_container(compose_cfg(["experiment=best", searchpath], tmp_path))
    expected = OmegaConf.to_container(OmegaConf.load(best_job / ".hydra" / "config.yaml"))
    del composed["paths"], expected["paths"]
    assert composed == expected
    composed = OmegaConf.create(composed)
    assert composed.model.net.cell == "gru" and composed.scheduler.name == "exponential"
    assert composed.trainer.precision == "64-true" and composed.early_stopping.patience == 7


def test_a_maximising_search_ranks_the_summary_and_best_yaml_highest_first(tmp_path):
    result = search(tmp_path, "hydra.sweeper.n_trials=3", "hydra.sweeper.direction=maximize", scaler="standard")
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(tmp_path / "logs")
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(root / "optuna.journal")))
    best = optuna.load_study(study_name="test", storage=storage).best_trial
    rows = summary(root)
    values = [float(r["val/mse"]) for r in rows]
    assert values == sorted(values, reverse=True) and values[0] == pytest.approx(best.value)
    assert rows[0]["job"].startswith(f"{best.number}_")
    assert f"job {rows[0]['job']}" in (root / "best.yaml").read_text()
    assert "(higher is better)" in (root / "sweep_summary.md").read_text()


def test_a_classifier_sweep_without_an_experiment_optimises_the_classifiers_metric(tmp_path):
    """optimized_metric null (the default) is the task's own: val/loss for a classifier, not val/mse."""
    archive = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    write_archive(archive, per_batch=40, n_test=40)
    cifar = ["data=cifar10", f"data.root={archive.parent}", "data.md5=null", "data.val_size=40", "model=cnn"]
    log_dir = tmp_path / "logs"
    result = run_app(["-m", *cifar, "optimizer=adam,sgd", *SHORT, f"paths.log_dir={log_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(log_dir)
    rows = summary(root)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert float(rows[0]["val/loss"]) <= float(rows[1]["val/loss"])
    assert "ranked by val/loss" in (root / "sweep_summary.md").read_text() and (root / "best.yaml").is_file()

    wrong = run_train([*cifar, *SHORT, "optimized_metric=val/mse", f"paths.log_dir={log_dir}"], cwd=tmp_path)
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr
    logged = "(val/loss, val/acc, model/params, time/epoch)"
    assert f"optimized_metric must name metrics the run logs {logged}" in wrong.stderr


def test_a_search_of_two_objectives_returns_both_and_marks_the_pareto_front(tmp_path):
    """hparams_search=cifar10_pareto: val/acc against model/params, on a small generated CIFAR archive."""
    archive = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    write_archive(archive, per_batch=40, n_test=40)
    cifar = [f"data.root={archive.parent}", "data.md5=null", "data.val_size=40", "data.batch_size=32"]
    small = ["hydra.sweeper.n_trials=3", "trainer.max_epochs=1", "data.eval_batch_size=40"]  # max_epochs: fixed
    small += ["model.net.widths=choice([8,16,16],[16,32,32])"]  # the command line's space wins: narrow nets
    log_dir = tmp_path / "logs"
    result = run_app(
        ["-m", "hparams_search=cifar10_pareto", *cifar, *small, *SHORT, f"paths.log_dir={log_dir}"], tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    root = sweep_root(log_dir)
    trials = study_trials(root, "cifar10_pareto")
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    for trial in trials:  # the values told are the job's val/acc and parameter count, in that order
        (job,) = root.glob(f"{trial.number}_*")
        metrics = json.loads((job / "metrics.json").read_text())["metrics"]
        assert trial.values == [metrics["val/acc"], metrics["model/params"]]
        assert metrics["model/params"] > 1000 and metrics["time/epoch"] > 0
    solutions = OmegaConf.load(root / "optimization_results.yaml").solutions
    points = [[-s["values"][0], s["values"][1]] for s in solutions]  # both to minimise
    assert points and not any(q != p and all(a <= b for a, b in zip(q, p, strict=True)) for p in points for q in points)
    groups = summary(root, "sweep_groups.csv")
    front = {tuple(float(g[m]) for m in ("val/acc", "model/params")) for g in groups if g["front"] == "yes"}
    assert front == {tuple(s["values"]) for s in solutions}
    assert "| front |" in (root / "sweep_summary.md").read_text()


@pytest.mark.parametrize(
    "threads", [None, pytest.param(1, marks=pytest.mark.slow(reason="threads=1 wins (9 s); so does OMP_NUM_THREADS"))]
)
def test_jobs_of_a_sweep_on_one_machine_share_its_cores_unless_threads_is_set(threads, tmp_path, monkeypatch):
    """Another live job of the sweep on this host (this test's process, registered as ThreadShare would):
    the job takes half the cores; a `threads` the user set wins."""
    monkeypatch.delenv("OMP_NUM_THREADS")  # (an explicit one wins too: the next test)
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / ".threads").mkdir(parents=True)
    (sweep_dir / ".threads" / f"{socket.gethostname()}_{os.getpid()}").touch()
    (sweep_dir / ".threads" / f"{socket.gethostname()}_999999999").touch()  # a job that died: not counted
    chosen = [] if threads is None else [f"threads={threads}"]
    result = run_train(["-m", "seed=1", *FAST, *chosen, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = sweep_dir.glob("0_*")
    cores = len(os.sched_getaffinity(0))
    assert json.loads((job / "metrics.json").read_text())["threads"] == (threads or max(1, cores // 2))
    if threads is None:  # the dead job's file is cleared, the job's own removed at its end
        assert [p.name for p in (sweep_dir / ".threads").iterdir()] == [f"{socket.gethostname()}_{os.getpid()}"]


def test_an_explicit_omp_num_threads_wins_over_the_share_in_a_sweep(tmp_path, monkeypatch):
    """Issue 44, defect 9: `OMP_NUM_THREADS=1 python train.py -m ...` logged "torch threads: 2 (2 cores, 1 jobs)"."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    sweep_dir = tmp_path / "sweep"
    result = run_app(["-m", "seed=1", *FAST, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (job,) = sweep_dir.glob("0_*")
    assert json.loads((job / "metrics.json").read_text())["threads"] == 1 and not (sweep_dir / ".threads").exists()


def test_the_summary_shows_numbers_at_four_digits_the_ranking_metric_first_and_the_winner_in_bold(tmp_path):
    """Issue 44, defect 10: sweep_summary.md printed Optuna's draws at full precision across 22 columns."""
    root = tmp_path / "sweep"
    lrs = ["0.003924048508734497", "0.0011", "0.17816804778743153"]
    jobs = [{"optimizer.lr": lr, "seed": str(seed)} for lr in lrs for seed in (0, 1)]
    values = [0.123456789, 0.1251, 0.2, 0.21, 0.3, 0.31]
    make_grid_sweep(root, [], jobs, values)
    rows, _, _ = sweep_inputs(OmegaConf.load(root / "multirun.yaml"), root)
    params, constants = split_overrides(rows)
    groups = sorted(group_rows(rows, params), key=lambda g: sort_key(g, "val/mse", 1))
    text = to_markdown(rows, groups, params, constants, "val/mse", 1)
    header = next(line for line in text.splitlines() if line.startswith("| optimizer.lr"))
    assert header.startswith("| optimizer.lr | jobs (finished) | val/mse |")
    assert "| 0.003924 | 2 of 2 | **0.1243 ± 0.0012** |" in text and "| 0.1782 | 2 of 2 | 0.305 ± 0.0071 |" in text
    assert "0.003924048508734497" not in text


@pytest.mark.parametrize(
    ("args", "multirun"),
    [
        (["hparams_search=etth1_optuna"], True),
        (["-m", "hparams_search=etth1_optuna"], True),
        (["hparams_search=etth1_optuna", "--cfg", "job"], False),
        (["hparams_search=null"], False),
        (["resume={job}"], False),  # one job of a search, continued: its saved overrides name the search
    ],
)
def test_a_search_is_a_multirun_with_or_without_m_on_both_hydra_lines(args, multirun, tmp_path):
    """Hydra 1.4 takes the mode from the command line or the primary config only, not from a search config."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- hparams_search=etth1_optuna\n- optimizer.lr=0.01\n")
    argv = train_argv(["train.py", *(a.format(job=tmp_path) for a in args)])
    assert ("-m" in argv) == multirun


@pytest.mark.slow(reason="a process of its own to show torch's default (10 s); the share is tested alongside")
def test_a_job_alone_keeps_every_core(tmp_path):
    result = run_train([*FAST, f"paths.log_dir={tmp_path / 'logs'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert json.loads((run / "metrics.json").read_text())["threads"] == torch.get_num_threads()


def test_a_thread_count_the_user_sets_is_a_hyperparameter(tmp_path):
    resolvers.register()  # ${when:...} and the others, as train.py registers them
    assert run_hparams(compose_cfg(["threads=1"], tmp_path), set())["threads"] == 1
    assert "threads" not in run_hparams(compose_cfg([], tmp_path), set())
