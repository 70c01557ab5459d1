"""Lightning's DDP with 2 CPU processes (gloo), single runs and inside a multirun."""

from __future__ import annotations

import csv

import pytest
import torch
from cifar_fixture import write_archive
from conftest import QUIET, event_dir, read_metrics, run_app, run_dirs, run_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# Lightning starts the second rank as a new process running train.py's command line: nothing here can run
# in-process, and each test costs 15-25 s of two processes training on two cores.
pytestmark = pytest.mark.slow(reason="DDP: two train.py processes per run (15-25 s a test here)")

DATA = [
    "data=synthetic",
    "data.length=1200",
    "data.seq_len=24",
    "data.horizon=8",
    "trainer.max_epochs=2",
    "early_stopping=none",
    *QUIET,
]
DDP = [*DATA, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]  # two gloo processes


def test_ddp_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    ddp = run_train(
        [
            *DDP,
            "data.batch_size=32",
            f"paths.log_dir={tmp_path / 'ddp'}",
        ],
        cwd=tmp_path,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = run_app([*DATA, "data.batch_size=64", f"paths.log_dir={tmp_path / 'single'}"], cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]

    (run_dir,) = run_dirs(tmp_path / "ddp")  # one run dir: rank 1 writes into rank 0's
    ddp_summary, single_summary = read_metrics(run_dir), read_metrics(run_dirs(tmp_path / "single")[0])
    assert ddp_summary["global_step"] == single_summary["global_step"]  # same optimizer steps per epoch
    for key in ("test/mse", "val/mse"):
        assert ddp_summary["metrics"][key] == pytest.approx(single_summary["metrics"][key], rel=0.1)
        # the loss (MSE) covers both ranks' windows, as the MSE metric does; not rank 0's shard alone
        loss = key.replace("mse", "loss")
        assert ddp_summary["metrics"][loss] == pytest.approx(ddp_summary["metrics"][key], rel=1e-5)

    events = EventAccumulator(str(event_dir(run_dir)))
    events.Reload()
    assert [e.step for e in events.Scalars("val/mse")].count(events.Scalars("val/mse")[0].step) == 1  # logged once
    assert len(events.Scalars("val/mse")) == 3  # two epochs and the best checkpoint's score
    state = torch.load(ddp_summary["best_checkpoint"], map_location="cpu", weights_only=True)
    assert any(k.startswith("net.") for k in state["state_dict"])


def test_multirun_with_ddp_makes_one_dir_per_job(tmp_path):
    log_dir = tmp_path / "logs"
    result = run_train(
        [
            "-m",
            "seed=1,2",
            *DDP,
            "debug=limit",
            "logger=none",
            f"paths.log_dir={log_dir}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (root,) = (log_dir / "train" / "multiruns").iterdir()
    jobs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))  # .threads: ThreadShare
    assert len(jobs) == 2 and all((j / ".hydra").is_dir() and (j / "metrics.json").is_file() for j in jobs)
    assert not list(log_dir.glob("train/runs"))  # no stray run dirs from the rank-1 processes
    with open(root / "sweep_summary.csv") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["ok", "ok"]


def test_cifar_under_ddp_shards_the_device_batches(tmp_path):
    """The device-resident CIFAR-10 loader under 2 gloo processes: half the steps, one run dir, learning."""
    archive = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    batches = write_archive(archive)
    n_train = sum(len(labels) for name, (_, labels) in batches.items() if name.startswith("data_batch")) - 200
    cifar = [
        "data=cifar10",
        f"data.root={archive.parent}",
        "data.md5=null",
        "data.val_size=200",
        "model=cnn",
        "optimizer=adam",
        "trainer.max_epochs=3",
        "early_stopping=none",
        "logger=none",
        *QUIET,
    ]
    ddp = run_train(
        [*cifar, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "data.batch_size=16"],
        cwd=tmp_path,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "logs")
    summary = read_metrics(run_dir)
    # each rank takes its own half of the training images, in batches of 16 (the global batch is 32)
    assert summary["global_step"] == 3 * (n_train // 2 // 16)
    assert summary["metrics"]["test/acc"] > 0.5  # chance is 0.1: the shards are real, distinct images
