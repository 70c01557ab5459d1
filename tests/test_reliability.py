"""Faults: a killed run resumes to the same result, a NaN loss stops cleanly, checkpoints never tear."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import optuna
import pytest
import torch
from conftest import QUIET, ROOT, compose_cfg, read_metrics, reproducible, run_app, run_dirs, run_train
from hydra.utils import instantiate

from tunelab.training.callbacks.checkpoint_io import AtomicCheckpointIO
from tunelab.training.optuna_storage import open_storage

# ~250 steps per epoch on this CPU: long enough to kill a run in the middle of an epoch
SLOW = [
    "data=synthetic",
    "data.length=1200",
    "data.seq_len=24",
    "data.horizon=8",
    "data.batch_size=4",
    "trainer.max_epochs=4",
    "early_stopping=none",
    "logger=none",
    "data.augment.jitter=0.05",
    *QUIET,
]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """metrics.json of the SLOW run with seed 1 run through, in this process: what a killed run of the same
    command, or a cut-off job of a sweep with seed=1, must end with once continued."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    whole = run_app([*SLOW, "seed=1", f"paths.log_dir={tmp / 'logs'}"], cwd=tmp)
    assert whole.returncode == 0, whole.stderr[-3000:]
    return read_metrics(run_dirs(tmp / "logs")[0])


def kill_mid_run(args: list[str], cwd: Path, log_dir: Path) -> Path:
    """Start train.py, SIGKILL it during the epoch after its first last.ckpt; return the run dir."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 600  # a guard only: the wait is for the file, however loaded the machine is
    while time.time() < deadline and not list(log_dir.rglob("last.ckpt")) and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (run_dir,) = run_dirs(log_dir)
    assert not (run_dir / "metrics.json").exists()
    return run_dir


@pytest.mark.slow(reason="long kill/resume run: a process killed mid-epoch, started again, compared (20-50 s)")
@pytest.mark.parametrize("how", ["resume", "run_dir"])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, how, uninterrupted):
    expected = uninterrupted
    log_dir = tmp_path / "killed"
    run_dir = kill_mid_run([*SLOW, "seed=1", f"paths.log_dir={log_dir}"], tmp_path, log_dir)
    again = [f"resume={run_dir}"] if how == "resume" else [f"hydra.run.dir={run_dir}", "ckpt_path=last"]
    resumed = run_train([*SLOW, "seed=1", f"paths.log_dir={log_dir}", *again], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run_dirs(log_dir) == [run_dir]  # continued in place
    summary = read_metrics(run_dir)
    assert summary["global_step"] == expected["global_step"] and summary["epochs"] == 4
    for key, value in reproducible(expected["metrics"]).items():
        assert summary["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-7), key


def test_nan_loss_stops_with_the_step_and_keeps_the_checkpoints(tmp_path):
    result = run_train(
        [
            "data=synthetic",
            "data.length=600",
            "data.seq_len=24",
            "data.horizon=8",
            "optimizer=sgd",
            "model=linear",
            "model.net.norm=none",
            "optimizer.lr=1e30",
            "logger=none",
            f"paths.log_dir={tmp_path / 'logs'}",
            *QUIET,
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert re.search(r"the training loss became (nan|inf) at epoch 0, step \d+", result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    (run_dir,) = run_dirs(tmp_path / "logs")
    summary = read_metrics(run_dir)
    assert summary["status"] == "failed" and "training loss became" in summary["error"]


def test_an_interrupted_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1, "weights": torch.ones(3)}, path)

    def dies_before_the_data_is_on_disk(fd):
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(os, "fsync", dies_before_the_data_is_on_disk)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2, "weights": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["ckpt_path=missing.ckpt"], "ckpt_path: no checkpoint file"), (["resume=nowhere"], "resume: nowhere holds no")],
)
def test_missing_checkpoint_or_run_dir(tmp_path, args, message):
    result = run_train(["data=synthetic", f"paths.log_dir={tmp_path / 'logs'}", *args], cwd=tmp_path)
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


@pytest.fixture
def small_disk(tmp_path):
    """Mount a real 2 MiB file system (tmpfs) for the test; `ro=True` mounts it read-only.

    Needs the right to mount (root here); elsewhere the test is skipped, never faked.
    """
    mounted = []

    def mount(ro: bool = False) -> Path:
        target = tmp_path / f"disk{len(mounted)}"
        target.mkdir()
        options = ("ro," if ro else "") + "size=2m"
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.mark.parametrize("mode", [[], ["-m", "optimizer=sgd,adam"]], ids=["run", "multirun"])
def test_read_only_output_folder_fails_in_one_line(small_disk, tmp_path, mode):
    log_dir = small_disk(ro=True) / "logs"
    result = run_train([*mode, "data=synthetic", f"paths.log_dir={log_dir}"], cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot write the output folder; Read-only file system: {log_dir}; "
        "check the free space and permissions there (or set paths.log_dir)"
    )
    assert "Traceback" not in result.stderr


def test_disk_filling_up_mid_run_keeps_the_last_good_checkpoint(small_disk, tmp_path):
    disk = small_disk()
    log_dir = disk / "logs"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *SLOW, "logger=tensorboard", f"paths.log_dir={log_dir}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 600
        while not list(log_dir.rglob("last.ckpt")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)  # something else fills the disk
        with pytest.raises(OSError, match="No space left"):
            while True:
                os.write(fd, bytes(1 << 16))
        os.close(fd)
        _, stderr = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 1
    (run_dir,) = run_dirs(log_dir)
    assert stderr.strip().splitlines()[-1].startswith(f"error: No space left on device: {run_dir}")
    assert "Traceback" not in stderr
    checkpoints = run_dir / "checkpoints"
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["epoch"] == 0  # whole, as saved after epoch 0
    assert [p.name for p in checkpoints.iterdir() if p.suffix == ".tmp"] == []


class ScriptedValLoss(L.LightningModule):
    """A one-weight model whose val/loss per epoch is given: the checkpoints' behaviour without a real task."""

    def __init__(self, val_losses: list[float]) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.val_losses = val_losses
        self.trained_epochs: list[int] = []

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return (self.weight - batch).pow(2).mean()

    def on_train_epoch_start(self) -> None:
        self.trained_epochs.append(self.current_epoch)

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val/loss", self.val_losses[self.current_epoch])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_last_ckpt_is_the_last_epoch_not_the_best(tmp_path):
    """Lightning 2.6 writes save_last's copy only beside a new best; conf/callbacks keeps last.ckpt current."""
    cfg = compose_cfg(["data=synthetic"], tmp_path)
    data = torch.utils.data.DataLoader(torch.ones(4, 1), batch_size=2)

    def fit(max_epochs: int, ckpt_path: str | None = None) -> ScriptedValLoss:
        checkpoints = [instantiate(cfg.callbacks[name]) for name in ("model_checkpoint", "last_checkpoint")]
        quiet = {"enable_progress_bar": False, "enable_model_summary": False}
        trainer = L.Trainer(max_epochs=max_epochs, callbacks=checkpoints, logger=False, **quiet)
        model = ScriptedValLoss([1.0, 0.5, 0.7, 0.9])
        trainer.fit(model, train_dataloaders=data, val_dataloaders=data, ckpt_path=ckpt_path)
        return model

    fit(max_epochs=3)  # the best val/loss at epoch 1, the run stopped after epoch 2
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch001.ckpt", "last.ckpt"]
    last = torch.load(checkpoints / "last.ckpt", weights_only=False)
    assert last["epoch"] == 2
    (best_state,) = [s for key, s in last["callbacks"].items() if "val/loss" in key]
    assert best_state["best_model_path"].endswith("epoch001.ckpt")
    assert fit(max_epochs=4, ckpt_path="last").trained_epochs == [3]  # resumed after epoch 2, not after 1


def test_resume_continues_with_the_runs_own_config_and_a_refused_one_changes_nothing(tmp_path):
    log_dir = tmp_path / "logs"
    first = [*QUIET, "data=synthetic", "data.length=600", "data.seq_len=24", "data.horizon=8", "data.batch_size=64"]
    done = run_app([*first, "trainer.max_epochs=2", "logger=none", f"paths.log_dir={log_dir}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = run_dirs(log_dir)
    steps_per_epoch = read_metrics(run_dir)["global_step"] // 2
    records = {p: p.read_bytes() for p in [*(run_dir / ".hydra").iterdir(), run_dir / "metrics.json"]}

    refused = run_train([f"resume={run_dir}", "model=gru", *QUIET], cwd=tmp_path)
    assert refused.returncode == 1 and "resume: " in refused.stderr and "another model" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert {p: p.read_bytes() for p in records} == records  # .hydra/ and metrics.json as the run left them

    # No data= or batch size given again: they come from the run's saved overrides.
    resumed = run_app([f"resume={run_dir}", "trainer.max_epochs=3", *QUIET], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run_dirs(log_dir) == [run_dir]
    summary = read_metrics(run_dir)
    assert summary["status"] == "ok" and summary["epochs"] == 3
    assert summary["global_step"] == 3 * steps_per_epoch
    saved = (run_dir / ".hydra" / "config.yaml").read_text()
    assert "batch_size: 64" in saved and "max_epochs: 3" in saved and "SyntheticSeriesDataModule" in saved


def test_a_resumed_run_continues_its_mlflow_run(tmp_path):
    """Issue 44, defect 5: the resume became a second MLflow run under another name (no run_id was passed)."""
    mlflow = pytest.importorskip("mlflow")
    log_dir = tmp_path / "logs"
    first = [*QUIET, "data=synthetic", "data.length=600", "data.seq_len=24", "data.horizon=8", "debug=limit"]
    done = run_app([*first, "trainer.max_epochs=2", "logger=mlflow", f"paths.log_dir={log_dir}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = run_dirs(log_dir)
    resumed = run_app([f"resume={run_dir}", "trainer.max_epochs=3", *QUIET], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    client = mlflow.tracking.MlflowClient(f"sqlite:///{log_dir / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["run_dir"] == str(run_dir)
    assert "trainer.max_epochs=2" in run.info.run_name  # the name it started with
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/mse")]
    per_epoch = read_metrics(run_dir)["global_step"] // 3
    assert {0, 1, 2} <= {step // per_epoch for step in steps}  # the first run's epochs and the resumed one's
    assert run.data.params["trainer/max_epochs"] == "2"
    assert run.data.tags["changed_on_resume"] == "trainer/max_epochs: 2 -> 3"


def test_resume_composes_the_saved_overrides_under_the_new_ones(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "overrides.yaml").write_text("- data=synthetic\n- data.batch_size=64\n- seed=3\n")
    cfg = compose_cfg([f"resume={run_dir}", "seed=5", "trainer.max_epochs=3"], tmp_path)
    assert cfg.data.batch_size == 64 and "Synthetic" in cfg.data._target_
    assert cfg.seed == 5 and cfg.trainer.max_epochs == 3 and cfg.resume == str(run_dir)


@pytest.mark.parametrize("order", ["resume first", "flag first"])
def test_resume_works_with_hydras_flags(order, tmp_path):
    """Issue 44, defect 6: `resume=<dir> --cfg job` exited 2 ("unrecognized arguments: hydra.output_subdir=null"):
    the resume's overrides went after the flag. They stay together, the flags after them."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "overrides.yaml").write_text("- data=synthetic\n- data.batch_size=48\n")
    args = [f"resume={run_dir}", "--cfg", "job", "trainer.max_epochs=3"]
    shown = run_app(args if order == "resume first" else args[1:3] + args[:1] + args[3:], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "batch_size: 48" in shown.stdout and "max_epochs: 3" in shown.stdout and "Synthetic" in shown.stdout
    assert not (run_dir / ".hydra" / "config.yaml").exists()  # printed, nothing written


@pytest.mark.slow(reason="long kill/resume run: a sweep of two long jobs killed and started again (50-80 s)")
def test_a_killed_grid_sweep_started_again_runs_only_what_is_not_done(tmp_path, uninterrupted):
    """Job 0 finished and job 1 cut off by SIGKILL: the same command again skips job 0 and continues job 1."""
    sweep_dir = tmp_path / "sweep"
    args = [str(ROOT / "train.py"), "-m", *SLOW, "seed=0,1", f"hydra.sweep.dir={sweep_dir}"]
    proc = subprocess.Popen([sys.executable, *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600  # a loaded machine (CI beside other work) may take minutes to get there
    while time.time() < deadline and not list(sweep_dir.glob("1_*/checkpoints/last.ckpt")) and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # into job 1's next epoch
    assert proc.poll() is None, "the sweep finished before it could be killed"
    assert list(sweep_dir.glob("1_*/checkpoints/last.ckpt")), "job 1 wrote no last.ckpt in 10 minutes"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (done,), (cut,) = sweep_dir.glob("0_*"), sweep_dir.glob("1_*")
    first = (done / "metrics.json").read_text()
    assert not (cut / "metrics.json").exists()

    again = subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(p.parent.name for p in sweep_dir.glob("*/.hydra")) == [done.name, cut.name]  # no new dirs
    assert (done / "metrics.json").read_text() == first  # not run again
    assert "not run again" in again.stdout and "continuing from its last.ckpt" in again.stdout
    resumed = read_metrics(cut)
    assert resumed["epochs"] == 4
    expected = uninterrupted  # job 1 (seed=1) run alone
    assert resumed["global_step"] == expected["global_step"]
    for key, value in reproducible(expected["metrics"]).items():  # the cut-off job ends as an uninterrupted run
        assert resumed["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-7), key
    with open(sweep_dir / "sweep_summary.csv") as f:
        assert [row["job"] for row in csv.DictReader(f)] in ([done.name, cut.name], [cut.name, done.name])


def test_a_failed_job_of_a_sweep_runs_again_only_when_asked(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = ["-m", "optimizer.lr=0.01,-1", *SLOW, "trainer.max_epochs=1", "data.length=300"]
    first = run_app([*args, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (failed,) = sweep_dir.glob("1_*")
    stamp = (failed / "metrics.json").stat().st_mtime_ns
    again = run_app([*args, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path)
    assert "retry_failed=true runs it again" in again.stdout
    assert (failed / "metrics.json").stat().st_mtime_ns == stamp
    retried = run_app([*args, f"hydra.sweep.dir={sweep_dir}", "retry_failed=true"], cwd=tmp_path)
    assert retried.returncode == 0 and (failed / "metrics.json").stat().st_mtime_ns != stamp


@pytest.mark.slow(reason="long kill/resume run: a search worker killed mid-trial, another retrying it (35-60 s)")
@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_a_killed_search_workers_trial_is_failed_and_retried_from_its_checkpoint(storage, tmp_path):
    """Worker a is killed mid-trial; worker b, started after the grace period, fails that trial and runs it
    again in its dir, from its last.ckpt, with the same parameters and the dead trial's reported values."""
    sweep_dir = tmp_path / "sweep"
    url = f"sqlite:///{tmp_path / 'study.db'}" if storage == "sqlite" else str(sweep_dir / "optuna.journal")
    search = ["-m", "hydra/sweeper=tunelab", "hydra/sweeper/sampler=random", "pruner=median", *SLOW]
    search += ["optimizer.lr=tag(log, interval(1e-4, 1e-2))", f"hydra.sweep.dir={sweep_dir}"]
    search += [f"hydra.sweeper.storage={url}", "hydra.sweeper.heartbeat_interval=0.5", "hydra.sweeper.grace_period=2"]
    trial_dir = kill_mid_run([*search, "hydra.sweeper.n_trials=1"], tmp_path, sweep_dir)
    time.sleep(2.5)  # the grace period runs out
    worker_b = run_train([*search, "hydra.sweeper.n_trials=2"], cwd=tmp_path)
    assert worker_b.returncode == 0, worker_b.stderr[-3000:]

    trials = optuna.load_study(study_name="search", storage=open_storage(url)).trials
    assert [t.state.name for t in trials].count("RUNNING") == 0
    dead, retry = trials[0], next(t for t in trials if t.user_attrs.get("retry_of") == 0)
    assert dead.state.name == "FAIL" and "its worker stopped: no heartbeat" in dead.user_attrs["error"]
    assert retry.state.name == "COMPLETE" and retry.params == dead.params
    assert sum(t.state.name == "COMPLETE" for t in trials) == 2  # worker b's n_trials, the retry among them
    assert sorted(retry.intermediate_values) == [0, 1, 2, 3]  # one history: the dead trial's steps, then its own
    assert trial_dir.name.startswith("0_") and len(list(sweep_dir.glob("*/metrics.json"))) == 2
    assert "continuing from its last.ckpt" in (trial_dir / "train.log").read_text()
    assert read_metrics(trial_dir)["epochs"] == 4
