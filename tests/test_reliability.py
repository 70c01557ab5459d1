"""Faults: a killed run resumes to the same result, a NaN loss stops cleanly, checkpoints never tear."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import QUIET, ROOT, read_metrics, run_dirs, run_train

from tunelab.training.checkpoint_io import AtomicCheckpointIO

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


def kill_mid_run(args: list[str], cwd: Path, log_dir: Path) -> Path:
    """Start train.py, SIGKILL it during the epoch after its first last.ckpt; return the run dir."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list(log_dir.rglob("last.ckpt")) and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (run_dir,) = run_dirs(log_dir)
    assert not (run_dir / "metrics.json").exists()
    return run_dir


@pytest.mark.parametrize("how", ["resume", "run_dir"])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, how):
    whole = run_train([*SLOW, f"paths.log_dir={tmp_path / 'whole'}"], cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    expected = read_metrics(run_dirs(tmp_path / "whole")[0])

    log_dir = tmp_path / "killed"
    run_dir = kill_mid_run([*SLOW, f"paths.log_dir={log_dir}"], tmp_path, log_dir)
    again = [f"resume={run_dir}"] if how == "resume" else [f"hydra.run.dir={run_dir}", "ckpt_path=last"]
    resumed = run_train([*SLOW, f"paths.log_dir={log_dir}", *again], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run_dirs(log_dir) == [run_dir]  # continued in place
    summary = read_metrics(run_dir)
    assert summary["global_step"] == expected["global_step"] and summary["epochs"] == 4
    for key, value in expected["metrics"].items():
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

    def dies_halfway(obj, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", dies_halfway)
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
