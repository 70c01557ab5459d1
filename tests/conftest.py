"""Shared helpers: compose configs in-process, run train.py as a user would, find the real data."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import types
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from tunelab.cli import compose_train, train_argv
from tunelab.training.hydra_hooks import resolvers

# Two test workers share this machine's two cores: one torch thread each (inherited by the
# train.py subprocesses) instead of two each fighting over them.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
DATA = ROOT / "data"  # the repository's data folder: the shipped ETT files (data/ETT-small)
ETT_DIR = DATA / "ETT-small"

# Small, fast settings for runs whose subject is the wiring, not the accuracy.
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
QUICK = ["debug=limit", "trainer.log_every_n_steps=1", *QUIET]
SYNTHETIC = ["data=synthetic", "data.length=600", "data.seq_len=24", "data.horizon=8"]
IMAGE_MODELS = ("airbench", "cnn", "resnet")  # classifiers: trained on generated CIFAR archives in test_cifar.py


def group_options(group: str) -> list[str]:
    """Every option of a config group, read from conf/ so that new options are tested automatically."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_cfg(overrides: list[str], tmp_path: Path) -> DictConfig:
    """The config train.py would see, with paths pointed into `tmp_path` (no Hydra run needed)."""
    return compose_train(CONF, overrides, root_dir=tmp_path, output_dir=tmp_path / "run", data_dir=DATA)


def reproducible(metrics: dict[str, float]) -> dict[str, float]:
    """The metrics a run must repeat exactly: all but the wall-clock ones (time/epoch)."""
    return {k: v for k, v in metrics.items() if not k.startswith("time/")}


REPORT = "hydra.callbacks.sweep_summary.report"  # the search report at the end of a multirun


def without_report(args: list[str]) -> list[str]:
    """A multirun's arguments with the search report off unless they set it: ~5 s a sweep, which
    test_report.py and the tests that ask for it check."""
    if "-m" in args and not any(a.startswith(REPORT) for a in args):
        return [*args, f"{REPORT}=false"]
    return args


def run_train(args: list[str], cwd: Path, script: str = "train.py", timeout: int = 1800) -> subprocess.CompletedProcess:
    """`python train.py ARGS` in a subprocess, started from `cwd`, as a user starts it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)  # users see Hydra's short errors, so the tests do too
    args = without_report(args)
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class AppResult:
    """What a finished `python train.py` would show: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def load_script(script: str) -> types.ModuleType:
    """train.py or eval.py as a module (its Hydra app is `hydra_main`, run by `main`), loaded once per test worker."""
    name = f"tunelab_script_{Path(script).stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / script)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
        # Hydra finds `config_path` beside the script's file only for a task function of `__main__`, as when
        # the script is run; under another module name it would look for a Python package named `conf`.
        sys.modules[name].hydra_main.__wrapped__.__module__ = "__main__"
    return sys.modules[name]


def run_app(args: list[str], cwd: Path, script: str = "train.py") -> AppResult:
    """`python train.py ARGS` in this process: the same Hydra app, command line and working directory as
    run_train's, without a new interpreter's 5-10 s of imports. For tests whose subject is what a run or
    sweep writes; what only a process shows (exit on a signal, stderr of a crash, joblib's and submitit's
    worker processes) stays with run_train. Whatever the run changes in this process (environment, cwd,
    torch threads, logging handlers, Hydra's global state) is put back."""
    args = without_report(args)
    module, saved_env, threads = load_script(script), dict(os.environ), torch.get_num_threads()
    saved_argv, saved_cwd, out, err, code = sys.argv, os.getcwd(), io.StringIO(), io.StringIO(), 0
    os.environ.pop("HYDRA_FULL_ERROR", None)
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            GlobalHydra.instance().clear()
            argv = [str(ROOT / script), *args]
            sys.argv = train_argv(argv) if script == "train.py" else argv
            module.main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None  # no later compose in this process may see the last job's settings
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        torch.set_num_threads(threads)
        for handler in logging.root.handlers[:]:  # Hydra's job logging: train.log and the captured console
            logging.root.removeHandler(handler)
            handler.close()
    return AppResult(code, out.getvalue(), err.getvalue())


def load_bench(script: str) -> types.ModuleType:
    """bench/<script>.py as a module; its sibling imports (driver) resolve as when it runs as a script."""
    if str(ROOT / "bench") not in sys.path:
        sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{script}", ROOT / "bench" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # where dataclasses look a class's module up
    spec.loader.exec_module(module)
    return module


def doc_block(bench: Any) -> str:
    """The text between a bench's two markers (each on a line of its own) in the docs file that holds its tables."""
    return (ROOT / bench.doc).read_text().split(bench.begin + "\n")[1].split("\n" + bench.end)[0]


def run_dirs(log_dir: Path) -> list[Path]:
    """The run directories (those Hydra created, marked by their .hydra folder) under `log_dir`."""
    return sorted(p.parent for p in log_dir.rglob(".hydra"))


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(autouse=True)
def fresh_run_id():
    """`${run_id:}` is made once per process and inherited by child processes (resolvers.run_id): a test that
    resolves a config in this process must not hand its id to the runs and sweeps of the tests after it
    (they would all share one run dir or sweep dir)."""
    os.environ.pop(resolvers.ENV, None)
    yield
    os.environ.pop(resolvers.ENV, None)


@pytest.fixture(scope="session")
def ett_dir() -> Path:
    """The real ETTh1 / ETTh2 files the repository ships (never skipped: a clone has them)."""
    assert (ETT_DIR / "ETTh1.csv").is_file() and (ETT_DIR / "ETTh2.csv").is_file(), (
        f"shipped ETT data missing in {ETT_DIR}"
    )
    return ETT_DIR


def event_dir(run_dir: Path) -> Path:
    """A run's TensorBoard event folder: `<run dir>/tensorboard/<run name>` (tunelab.training.run.naming)."""
    (folder,) = (run_dir / "tensorboard").iterdir()
    return folder


@contextlib.contextmanager
def tensorboard_server(logdir: Path):
    """A real `tensorboard --logdir LOGDIR` on a free local port; yields its base URL."""
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "tensorboard"),
            "--logdir",
            str(logdir),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url, deadline = None, time.time() + 300  # a guard: a loaded machine starts it slowly
        while url is None and time.time() < deadline:
            found = re.search(r"(http://[\w.:]+)/", server.stderr.readline())
            url = found.group(1) if found else None
        assert url, "tensorboard did not report its address"
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextlib.contextmanager
def dashboard_server(storage: Path):
    """A real `optuna-dashboard STORAGE` on a free loopback port; yields its base URL once its API answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(Path(sys.executable).parent / "optuna-dashboard"), str(storage), "--host", "127.0.0.1"]
    server = subprocess.Popen([*command, "--port", str(port), "--quiet"])
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.time() + 300
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{url}/api/meta", timeout=10)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError("optuna-dashboard did not answer")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server on loopback (tests/postgres_server.py); skipped where no server binaries are
    installed (Debian: apt-get install postgresql), which a clone cannot bring."""
    from postgres_server import PostgresServer

    if not PostgresServer.available():
        pytest.skip("no PostgreSQL server here (Debian: apt-get install postgresql)")
    with PostgresServer() as server:
        yield server
