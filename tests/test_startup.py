"""Start-up: commands that only compose, print or refuse a config import neither torch nor Lightning,
and no run imports the optional packages (Optuna, MLflow, scikit-learn, optuna-dashboard) it does not use.

`python -X importtime` lists every module a process imports, so each test reads what was imported
instead of timing it (a loaded machine would make a timing flaky).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, SYNTHETIC

HEAVY = ("torch", "lightning")
OPTIONAL = ("optuna", "mlflow", "wandb", "sklearn", "optuna_dashboard")


def imported(args: list[str], cwd) -> tuple[set[str], subprocess.CompletedProcess]:
    """The top-level packages `python train.py ARGS` imports, and the finished process."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "train.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a guard only: these commands take a second or two
    )
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", result.stderr, flags=re.MULTILINE)
    return {name.split(".")[0] for name in names}, result


@pytest.mark.parametrize(
    "args",
    [
        ["--cfg", "job"],
        ["--help"],
        ["--info"],
        ["hparams_search=etth1_optuna", "--cfg", "hydra"],
        ["experiment=etth1_m96", "--cfg", "all"],
    ],
    ids=["cfg job", "help", "info", "search cfg", "experiment cfg all"],
)
def test_commands_that_only_show_the_config_import_no_torch(args, tmp_path):
    modules, result = imported(args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "hydra" in modules and "tunelab" in modules
    assert not modules & {*HEAVY, *OPTIONAL}, sorted(modules & {*HEAVY, *OPTIONAL})


def test_a_command_refused_by_a_config_check_imports_no_torch_and_says_why(tmp_path):
    run_dir = tmp_path / "run"
    modules, result = imported(["optimizer.lr=-1", f"hydra.run.dir={run_dir}"], tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert errors == ["error: optimizer.lr must be a positive number; got -1"]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "failed"
    assert not modules & {*HEAVY, *OPTIONAL}, sorted(modules & {*HEAVY, *OPTIONAL})


def test_a_training_run_imports_torch_but_no_optional_package_it_does_not_use(tmp_path):
    run_dir = tmp_path / "run"
    args = [*SYNTHETIC, "debug=limit", "trainer.enable_progress_bar=false", "logger=csv", f"hydra.run.dir={run_dir}"]
    modules, result = imported(args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "ok"
    assert {*HEAVY} <= modules
    assert not modules & {*OPTIONAL}, sorted(modules & {*OPTIONAL})
