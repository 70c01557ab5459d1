"""Every command in README.md runs, so the README cannot drift from the code.

`python train.py ...` lines run as written, with only paths and a short-run limit appended; the
install and test lines must be exactly what CI (.ci/run) executes; `tensorboard --logdir` is started
and answers over HTTP.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cifar_fixture import write_archive
from conftest import ROOT, SHARED_DATA, run_dirs, run_train

from tunelab.data import SyntheticSeriesDataModule

SHORT = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=5",
    "trainer.limit_val_batches=3",
    "trainer.limit_test_batches=3",
]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


TRAIN = [c for c in readme_commands() if c.startswith("python train.py")]


def test_readme_has_the_quick_start():
    commands = readme_commands()
    assert commands[:4] == ["pip install torch==2.13.0", 'pip install -e ".[dev]"', "python train.py", "pytest"]
    known = ("pip install", "python train.py", "pytest", "tensorboard --logdir")
    assert all(c.startswith(known) for c in commands), [c for c in commands if not c.startswith(known)]


def test_ci_runs_the_readme_install_and_test_commands():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in readme_commands():
        if command.startswith(("pip install", "pytest")) and not command.startswith("pytest -m"):
            assert command in ci, f"{command!r} is in the README but not in .ci/run"


def data_dir(tmp_path: Path) -> Path:
    """A data folder as a user's would look: the real ETT files and a CIFAR-10 archive (generated here)."""
    data = tmp_path / "data"
    (data / "cifar10").mkdir(parents=True)
    (data / "ETT-small").symlink_to(SHARED_DATA / "ETT-small")
    write_archive(data / "cifar10" / "cifar-10-python.tar.gz", per_batch=1200, n_test=100)
    return data


@pytest.mark.parametrize("command", TRAIN)
def test_readme_train_command(command, tmp_path):
    # data=csv examples read my.csv from the working directory: give them one
    SyntheticSeriesDataModule(length=2000).load_frame().to_csv(tmp_path / "my.csv")
    args = [*shlex.split(command)[2:], f"paths.data_dir={data_dir(tmp_path)}", f"paths.log_dir={tmp_path / 'logs'}"]
    args += SHORT
    if "cifar10" in command:  # the generated archive is not the official one; a full-width ResNet is slow here
        args += ["data.md5=null"] + (["model.net.width=8"] if "resnet" in command else [])
    result = run_train(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert run_dirs(tmp_path / "logs")


def test_readme_tensorboard_command(tmp_path):
    (command,) = {c for c in readme_commands() if c.startswith("tensorboard --logdir")}
    log_dir = tmp_path / "logs"
    result = run_train(
        [*TRAIN[0].split()[2:], f"paths.data_dir={SHARED_DATA}", f"paths.log_dir={log_dir}", *SHORT], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tensorboard = Path(sys.executable).parent / "tensorboard"
    args = [str(tensorboard), *shlex.split(command)[1:], "--host", "127.0.0.1", "--port", "0"]
    server = subprocess.Popen(args, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.time() + 60
        while url is None and time.time() < deadline:
            line = server.stderr.readline()
            found = re.search(r"(http://[\w.:]+)/", line)
            url = found.group(1) if found else None
        assert url, "tensorboard did not report its address"
        runs = json.load(urllib.request.urlopen(f"{url}/data/runs", timeout=30))
        assert any(run.endswith("tensorboard") for run in runs), runs
    finally:
        server.terminate()
        server.wait(timeout=30)
