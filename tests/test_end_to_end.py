"""`python train.py` as a user runs it, on the real ETTh1 file: files written, tags logged, runs repeatable."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from conftest import QUICK, ROOT, SYNTHETIC, event_dir, read_metrics, reproducible, run_dirs, run_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def test_train_on_etth1(tmp_path, ett_dir):
    log_dir = tmp_path / "logs"
    result = run_train(
        [
            f"paths.data_dir={ett_dir.parent}",
            f"paths.log_dir={log_dir}",
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=30",
            "trainer.log_every_n_steps=5",
            "optimizer=adamw",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Nothing on stderr, on either Hydra line: no deprecation (version_base, resolvers, execution whitelist),
    # no Lightning advert, no second copy of its info lines (tunelab.training.run.quiet)
    assert result.stderr == ""
    (run_dir,) = run_dirs(log_dir)
    # the run ends by saying where its logs are and how to look at them
    assert f"tensorboard --logdir {run_dir}" in result.stdout

    summary = read_metrics(run_dir)
    assert summary["status"] == "ok" and summary["epochs"] == 2
    for key in ("val/mse", "val/mae", "test/mse", "test/mae", "test/mse_orig", "test/mae_orig"):
        assert math.isfinite(summary["metrics"][key]) and summary["metrics"][key] > 0
    # the scaled test MSE of a barely trained LSTM is still in a sane range for standardised data
    assert summary["metrics"]["test/mse"] < 5

    best, last = (
        run_dir / "checkpoints" / f"{summary['best_checkpoint'].rsplit('/', 1)[1]}",
        run_dir / "checkpoints" / "last.ckpt",
    )
    assert best.is_file() and last.is_file()
    state = torch.load(best, map_location="cpu", weights_only=True)
    assert any(k.startswith("net.layers.0.") for k in state["state_dict"])
    assert (run_dir / ".hydra" / "config.yaml").is_file()

    events = EventAccumulator(str(event_dir(run_dir)))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/mse", "val/mae", "test/mse", "test/mae"} <= scalars
    assert any(tag.startswith("train/lr") for tag in scalars)
    val_mse = events.Scalars("val/mse")
    # one point per epoch, then the best checkpoint's score (the value in metrics.json); none at step 0
    assert [e.step for e in val_mse] == [29, 59, 60]
    assert val_mse[-1].value == pytest.approx(summary["metrics"]["val/mse"])


def test_same_seed_same_metrics(tmp_path):
    from conftest import compose_cfg

    from tunelab.train import train

    runs = [
        train(compose_cfg([*SYNTHETIC, *QUICK, "logger=none", "data.augment.jitter=0.1"], tmp_path / f"r{i}"))
        for i in range(2)
    ]
    assert reproducible(runs[0]) == reproducible(runs[1])
    other = train(
        compose_cfg([*SYNTHETIC, *QUICK, "logger=none", "data.augment.jitter=0.1", "seed=7"], tmp_path / "r2")
    )
    assert reproducible(other) != reproducible(runs[0])


def test_jobs_started_together_get_their_own_run_dirs(tmp_path):
    log_dir = tmp_path / "logs"
    args = [sys.executable, str(ROOT / "train.py"), *SYNTHETIC, *QUICK, "logger=none", f"paths.log_dir={log_dir}"]
    procs = [subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(3)]
    assert all(p.wait(timeout=1800) == 0 for p in procs)
    dirs = run_dirs(log_dir)
    assert len(dirs) == 3 and all((d / "metrics.json").is_file() for d in dirs)


@pytest.mark.slow(reason="the full default run, unchanged: 1-3 minutes of training on this CPU")
def test_default_command_on_etth1(tmp_path, ett_dir):
    """The README's `python train.py`, unchanged: a full default run (1-3 minutes), best checkpoint tested."""
    result = run_train(
        [f"paths.data_dir={ett_dir.parent}", f"paths.log_dir={tmp_path / 'logs'}"], cwd=tmp_path, timeout=1800
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "logs")
    summary = read_metrics(run_dir)
    assert math.isfinite(summary["metrics"]["test/mse"]) and summary["best_checkpoint"].endswith(".ckpt")
