"""Every command in README.md and docs/ runs, in order, in a fresh working directory, as a user would run them.

Install and test lines must be exactly what CI (.ci/run) executes. Training commands run as written
(data in ./data, logs in ./logs), with only a short-run limit appended; `<run>` and `<id>` stand for the
latest run and sweep directories that earlier commands created. The SLURM line is composed (`--cfg
hydra`), since no SLURM cluster is here; `tensorboard` is started and queried over HTTP.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cifar_fixture import write_archive
from conftest import CONF, ETT_DIR, ROOT, dashboard_server, run_train, tensorboard_server
from fmnist_fixture import write_set
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser

from tunelab.cli import compose_train
from tunelab.data import SyntheticSeriesDataModule
from tunelab.search import search_space
from tunelab.training.hydra_hooks.versions import VERSION_BASE
from tunelab.training.run.checks import check_config

SHORT = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=5",
    "trainer.limit_val_batches=3",
    "trainer.limit_test_batches=3",
    "trainer.enable_progress_bar=false",
]


# The README and the docs it links to, in reading order: the walkthrough runs their commands in this order.
DOCS = (
    "README.md",
    "docs/data.md",
    "docs/fine-tuning.md",
    "docs/sweeps.md",
    "docs/results.md",
    "docs/speed.md",
    "docs/guarantees.md",
    "docs/tests.md",
)


def doc_commands(doc: str = "README.md") -> list[str]:
    """The lines of a document's bash blocks, without comments."""
    text = (ROOT / doc).read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


CI_COMMANDS = ("pip ", "pytest", "ruff ")  # the README's lines that .ci/run executes: install, both tiers, lint


def test_readme_starts_with_the_quick_start_and_ci_runs_it():
    commands = doc_commands()
    install = 'pip install -e ".[dev,sweep,cluster,mlflow,wandb]"'
    assert commands[:4] == ["pip install torch==2.13.0", install, "python train.py", "pytest"]
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith(CI_COMMANDS)]
    in_readme = list(dict.fromkeys(c for c in commands if c.startswith(CI_COMMANDS)))  # `pytest` is there twice
    assert ci == in_readme, "README.md and .ci/run must list the same lines"
    assert ci[-4:] == ["pytest", "pytest -m slow", "ruff check .", "ruff format --check ."]


def newest(cwd: Path, pattern: str) -> Path:
    """The most recently written file matching `pattern` under cwd."""
    found = sorted(cwd.glob(pattern), key=lambda p: p.stat().st_mtime)
    assert found, f"nothing matches {pattern} yet"
    return found[-1]


def expand(command: str, cwd: Path) -> list[str]:
    """Fill `<run>` (a run with a last.ckpt) and `<id>` (a sweep with an Optuna study) from earlier commands."""
    if "<run>" in command:
        command = command.replace("<run>", newest(cwd, "logs/train/runs/*/checkpoints/last.ckpt").parents[1].name)
    if "<id>" in command:
        command = command.replace("<id>", newest(cwd, "logs/train/multiruns/*/optuna.journal").parent.name)
    return shlex.split(command)


# bench script: (arguments that shorten it to a smoke run, a line its output must hold)
BENCH_RUNS = {
    "bench/etth1.py": (
        # every etth1.py command of the README, --table-only too, ends with the table of what etth1.csv holds
        [
            *["--recipes", "etth1_lstm_s96", "--models", "naive", "linear", "--seeds", "0", "--csv", "etth1.csv"],
            *["--overrides", "trainer.max_epochs=1", "trainer.limit_train_batches=5"],
        ],
        "| etth1_lstm_s96/v1 | linear | trainer.max_epochs=1 trainer.limit_train_batches=5 | 1 |",
    ),
    "bench/images.py": (
        # a generated set in the official format (data/fashion_mnist of the walkthrough's folder)
        [
            *["--seeds", "0", "--csv", "images.csv", "--overrides", "data.checksums=false", "data.val_size=100"],
            *["data.batch_size=50", "trainer.max_epochs=1", "trainer.limit_train_batches=5"],
        ],
        "| fmnist_airbench/v2 | data.checksums=false data.val_size=100 data.batch_size=50 trainer.max_epochs=1",
    ),
    "bench/finetune.py": (
        # the generated set of the walkthrough's data/fashion_mnist; every finetune.py command ends with its tables
        [
            *["--amounts", "10", "--seeds", "0", "--csv", "finetune.csv", "--overrides", "data.checksums=false"],
            *["data.val_size=100", "data.batch_size=16", "trainer.max_epochs=1", "trainer.limit_train_batches=2"],
        ],
        "| finetune_fmnist/v2 | 10 | data.checksums=false data.val_size=100 data.batch_size=16 trainer.max_epochs=1",
    ),
    "bench/epoch_time.py": (["--lengths", "96", "--batches", "1", "--repeats", "1"], "per-timestep LSTM-64 at L=96: "),
    "bench/recipe_search.py": (
        # the journals, jobs and rows in the walkthrough's folder; 2 trials of 3 batches, 1 confirmation
        [
            *["--trials", "2", "--studies", "searches", "--runs", "searches_runs", "--csv", "etth1.csv"],
            *["--overrides", "trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=3"],
            *["trainer.limit_test_batches=3", "hydra.sweeper.confirm.top_k=1", "hydra.sweeper.confirm.seeds=[0]"],
        ],
        "| search | trials: finished / pruned / failed |",
    ),
    "bench/segrnn_speed.py": (["--repeats", "1"], "tunelab / official SegRNN: "),  # no checkout there: not measured
    "bench/precision.py": (
        ["--recipes", "etth1_s96", "--batches", "1", "--repeats", "1"],
        "ratio 32-true / bf16-mixed: ",
    ),
    "bench/cifar_loader.py": (["--batches", "2", "--repeats", "1"], "ratio device-side / best per-sample"),
    "bench/overhead.py": (["--steps", "30", "--repeats", "1"], "default: ratio d/a "),
    "bench/startup.py": (["--repeats", "1"], "default run, to its first step"),
    "bench/sweep_throughput.py": (["--trials", "2", "--epochs", "1"], "two split workers / one worker: "),
    "bench/search.py": (
        ["--trials", "2", "--overrides", "trainer.max_epochs=1"],
        # pruners; or the plugin against tunelab (hydra-optuna-sweeper beside tunelab: tests/test_official_sweeper.py)
        ("pruner=halving vs pruner=none: wall time ratio ", "tunelab vs plugin: not measured: "),
    ),
    "bench/cifar_gpu.py": (
        [
            "--train-images",
            "500",
            "--test-images",
            "100",
            "--batch-size",
            "50",
            "--steps",
            "3",
            "--repeats",
            "1",
            "model.net.widths=[8,16,16]",
        ],
        "ratio tunelab / airbench (images/s): ",  # on a CPU: "not measured: airbench needs CUDA ..."
    ),
}


def run_command(command: str, cwd: Path) -> None:
    args = expand(command, cwd)
    if args[:2] == ["python", "eval.py"]:
        result = run_train(args[2:], cwd=cwd, script="eval.py")
    elif args[:2] == ["python", "train.py"]:
        extra = [] if "hydra.sweeper.n_trials=" in command else ["hydra.sweeper.n_trials=2"]
        if "submitit_slurm" in command:  # no SLURM here: the command must compose (first value of each sweep)
            single = [a.split(",")[0] for a in args[2:] if a != "-m"]
            result = run_train([*single, "--cfg", "hydra"], cwd=cwd)
            assert result.returncode == 0, result.stderr[-3000:]
            assert "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher" in result.stdout
            return
        extra += ["hydra.sweeper.confirm.seeds=[0]"]  # the hparams_search configs confirm their best on 3 seeds
        args += SHORT + (extra if "hparams_search" in command or "hydra/sweeper=" in command else [])
        args += ["tune.lr_find_steps=20", "tune.batch_size_trials=2"] if "tune." in command else []
        if "fmnist" in command:  # the generated set: 300 training images, not 55,000
            args += ["data.checksums=false", "data.val_size=100", "data.batch_size=16", "data.per_class=10"]
        if "cifar10" in command:  # the generated archive is not the official one; a full ResNet is slow here
            args += ["data.md5=null"] + (["model.net.width=8"] if "resnet" in command else [])
        result = run_train(args[2:], cwd=cwd)
    elif args[0] == "python" and args[1] in BENCH_RUNS:
        shortened, expected = BENCH_RUNS[args[1]]
        result = subprocess.run(
            [sys.executable, str(ROOT / args[1]), *args[2:], *shortened], cwd=cwd, capture_output=True, text=True
        )
        assert any(line in result.stdout for line in ([expected] if isinstance(expected, str) else expected)), (
            result.stdout[-2000:]
        )
    elif args[:3] == ["python", "-m", "tunelab.report"]:
        result = subprocess.run([sys.executable, *args[1:]], cwd=cwd, capture_output=True, text=True)
        assert (cwd / args[3] / "report" / "history.png").is_file(), (result.returncode, result.stdout, result.stderr)
    elif args[0] == "tensorboard":
        return check_tensorboard(args, cwd)
    elif args[0] == "optuna-dashboard":
        with dashboard_server(cwd / args[1]) as url:
            (study,) = json.load(urllib.request.urlopen(f"{url}/api/studies", timeout=30))["study_summaries"]
            detail = json.load(urllib.request.urlopen(f"{url}/api/studies/{study['study_id']}", timeout=30))
        assert {t["state"] for t in detail["trials"]} <= {"Complete", "Pruned", "Fail"} and detail["trials"], detail
        return
    else:
        raise AssertionError(f"the README test does not know how to run {command!r}")
    assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"


def check_tensorboard(args: list[str], cwd: Path) -> None:
    with tensorboard_server(cwd / args[args.index("--logdir") + 1]) as url:
        runs = json.load(urllib.request.urlopen(f"{url}/data/runs", timeout=30))
    assert sum("/tensorboard/" in run for run in runs) >= 2, runs


def walkthrough_parts() -> list[list[str]]:
    """Each document's commands but install and test, in order, cut before each command that needs an earlier
    run (`<run>`): a part cut there starts with the quick-start `python train.py` to make that run. The parts
    run on the test workers at once."""
    parts = []
    for doc in DOCS:
        commands = [c for c in doc_commands(doc) if not c.startswith(CI_COMMANDS)]
        if not commands:
            continue
        cuts = [i for i, c in enumerate(commands) if "<run>" in c and i > 0]
        bounds = [0, *cuts, len(commands)]
        for start, end in itertools.pairwise(bounds):
            parts.append((["python train.py"] if "<run>" in commands[start] else []) + commands[start:end])
    return parts


@pytest.mark.slow(reason="about 17 minutes: ~50 processes, each training or sweeping as a user would")
@pytest.mark.parametrize("part", range(len(walkthrough_parts())), ids=lambda part: f"part-{part + 1}")
def test_readme_walkthrough(tmp_path, part):
    data = tmp_path / "data"
    (data / "cifar10").mkdir(parents=True)
    (data / "ETT-small").symlink_to(ETT_DIR)  # as in a clone's ./data, for a walkthrough started elsewhere
    write_archive(data / "cifar10" / "cifar-10-python.tar.gz", per_batch=1200, n_test=100)
    write_set(data / "fashion_mnist", n_train=400, n_test=100)
    SyntheticSeriesDataModule(length=2000).load_frame().to_csv(tmp_path / "my.csv")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")  # bench/etth1.py --doc docs/results.md writes its tables there
    for command in walkthrough_parts()[part]:
        run_command(command, tmp_path)


def first_of_each_sweep(args: list[str]) -> list[str]:
    """A multirun's overrides as one job of it: each sweep (`a=1,2`, `choice(...)`) at its first value; the
    intervals an Optuna sweeper draws from are left out; lists (`logger=[tensorboard,mlflow]`) stay lists."""
    one_job = []
    for override in OverridesParser.create().parse_overrides(args):
        if not override.is_sweep_override():
            one_job.append(override.input_line)
        elif not override.is_interval_sweep():
            one_job.append(f"{override.get_key_element()}={next(override.sweep_string_iterator())}")
    return one_job


def fake_run(cwd: Path) -> Path:
    """What `<run>` names for composing: a run dir with a last.ckpt and its saved overrides (none)."""
    run = cwd / "logs" / "train" / "runs" / "composed"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").touch()
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text("[]\n")
    return run


ENTRY_LINES = [c for doc in DOCS for c in doc_commands(doc) if c.startswith(("python train.py", "python eval.py"))]


@pytest.mark.parametrize("command", ENTRY_LINES)
def test_readme_command_composes(command, tmp_path, monkeypatch):
    """The fast tier's drift check of every `python train.py` / `eval.py` line of the README and docs/ (the slow
    tier runs them all):
    its overrides compose, as one job of a multirun, the training checks pass, and an Optuna search's space
    parses. `<run>` is a run dir made to look finished; `<id>` a sweep dir name."""
    monkeypatch.chdir(tmp_path)
    command = command.replace("<run>", fake_run(tmp_path).name).replace("<id>", "composed")
    script, *args = shlex.split(command)[1:]
    sweep = [a for a in args if a not in ("-m", "--multirun")]
    overrides = first_of_each_sweep(sweep) if "-m" in args else sweep
    if script == "eval.py":
        with initialize_config_dir(config_dir=str(CONF), **VERSION_BASE):
            cfg = compose(config_name="eval", overrides=overrides)
        assert Path(cfg.ckpt_path).is_file()
        return
    cfg = compose_train(CONF, overrides, with_hydra=True)
    check_config(cfg)
    if "-m" in args and cfg.hydra.sweeper.get("params") is not None:  # an Optuna search: its space must parse
        space = search_space.build({str(k): str(v) for k, v in cfg.hydra.sweeper.params.items()}, sweep)
        assert space.distributions, command


LINK = re.compile(r"\]\(([^)\s]+)\)")  # a markdown link's target


def anchors(doc: Path) -> set[str]:
    """The anchors GitHub gives a document's headings: lower case, spaces as hyphens, punctuation dropped."""
    headings = re.findall(r"^#+ (.+)$", doc.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_doc_is_linked_from_the_readme_and_every_link_lands():
    docs = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
    assert docs == sorted(DOCS[1:]), "a file in docs/ must be listed in DOCS (so the walkthrough runs it)"
    readme_links = set(LINK.findall((ROOT / "README.md").read_text()))
    assert {d for d in docs if d not in readme_links} == set(), "every docs/ file is linked from README.md"
    for doc in DOCS:
        for target in LINK.findall((ROOT / doc).read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            file = ((ROOT / doc).parent / path).resolve() if path else ROOT / doc
            assert file.exists(), f"{doc}: the link {target} leads nowhere"
            if anchor and file.suffix == ".md":
                assert anchor in anchors(file), f"{doc}: {target} names no heading of {file.name}"
