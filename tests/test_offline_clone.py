"""A fresh clone, with no network and nothing beside it (no ../shared), trains the default job."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import QUIET, ROOT

SHORT = ["trainer.max_epochs=1", "trainer.limit_train_batches=5", "trainer.limit_val_batches=3"]
SHORT += ["trainer.limit_test_batches=3", "logger=none", *QUIET]


def test_a_fresh_clone_trains_the_default_job_offline(tmp_path):
    clone = tmp_path / "alone" / "tunelab"  # its parent holds nothing else: no shared data beside it
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    assert (clone / "data" / "ETT-small" / "ETTh1.csv").is_file()  # shipped, not downloaded
    # The clone's own code, and any download attempt fails at once (a dead proxy on loopback).
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "PYTHONPATH": str(clone / "src"), "http_proxy": dead, "https_proxy": dead}
    env.pop("HYDRA_FULL_ERROR", None)
    result = subprocess.run(
        [sys.executable, "train.py", *SHORT], cwd=clone, env=env, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (summary,) = (clone / "logs").rglob("metrics.json")
    metrics = json.loads(summary.read_text())
    assert metrics["status"] == "ok" and 0 < metrics["metrics"]["test/mse"] < 10
