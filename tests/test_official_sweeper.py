"""tunelab's Optuna sweeper beside hydra-optuna-sweeper itself: both load, each can be chosen, nothing clashes.

Installed together, `hydra/sweeper=optuna` (and the sampler names) are the official plugin's, and tunelab's
sweeper is `hydra/sweeper=tunelab_optuna`, which tunelab's own searches use (conf/hydra/sweeper/tunelab.yaml).
CI installs hydra-optuna-sweeper 1.4 in its Hydra 1.4 run and runs this file there; elsewhere it skips.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from omegaconf import OmegaConf

pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="hydra-optuna-sweeper is not installed")

APPS = Path(__file__).parent / "optuna_apps"
OFFICIAL = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
TUNELAB = "hydra_plugins.tunelab_optuna.optuna_sweeper.OptunaSweeper"


def run(script: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], cwd=script.parent, capture_output=True, text=True)


def sweeper_target(script: Path, *args: str) -> str:
    shown = run(script, *args, "--cfg", "hydra")
    assert shown.returncode == 0, shown.stderr[-3000:]
    return OmegaConf.create(shown.stdout).hydra.sweeper._target_


@pytest.mark.parametrize(("choice", "target"), [("optuna", OFFICIAL), ("tunelab_optuna", TUNELAB)])
def test_each_sweeper_can_be_chosen_and_runs_a_search(choice, target, tmp_path):
    sphere = APPS / "sphere.py"
    assert sweeper_target(sphere, f"hydra/sweeper={choice}") == target
    args = [f"hydra/sweeper={choice}", "hydra/sweeper/sampler=random", "hydra.sweeper.n_trials=3"]
    args += ["hydra.sweeper.n_jobs=1", f"hydra.sweep.dir={tmp_path}"]
    searched = run(sphere, "--multirun", *args)
    assert searched.returncode == 0, searched.stderr[-3000:]
    assert len(OmegaConf.load(tmp_path / "optimization_results.yaml").best_params) == 2
    assert len(list(tmp_path.glob("*/.hydra"))) == 3


def test_tunelabs_searches_keep_tunelabs_sweeper():
    assert sweeper_target(ROOT / "train.py", "hparams_search=etth1_optuna") == TUNELAB


def test_the_search_bench_races_the_plugin_against_tunelab_on_one_space(ett_dir):
    """bench/search.py --against-plugin: the same space and budget through each sweeper, one table."""
    command = [sys.executable, str(ROOT / "bench" / "search.py"), "--search", "etth1_s96_search", "--against-plugin"]
    command += ["--trials", "2", "--data-dir", str(ett_dir.parent), "--overrides", "trainer.max_epochs=1"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith(("| plugin |", "| tunelab |"))]
    assert len(rows) == 2 and all(" 2 / 0 / 0 " in row for row in rows), result.stdout[-2000:]
    assert "tunelab vs plugin: wall time ratio " in result.stdout
