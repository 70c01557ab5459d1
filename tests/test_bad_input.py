"""Bad input is refused before training with one clear message naming the key or file, leaving no artifacts."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from cifar_fixture import add_file, write_archive
from conftest import compose_cfg, run_app, run_train
from hydra.errors import HydraException
from torch import nn

from tunelab.errors import user_message
from tunelab.train import train

GOOD = "date,a,OT\n" + "".join(f"2021-01-{1 + i // 24:02d} {i % 24:02d}:00:00,{i % 7},{i * 0.5}\n" for i in range(240))


def csv_file(tmp_path: Path, text: str | bytes, name: str = "series.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def replace_line(index: int, line: str) -> str:
    lines = GOOD.splitlines()
    lines[index] = line
    return "\n".join(lines) + "\n"


# (name, csv text or None for the good file, extra overrides, expected message fragments)
CASES = [
    ("missing file", None, ["data.path=absent.csv"], ["data file not found", "absent.csv"]),
    ("empty file", "", [], ["is empty", "series.csv"]),
    ("header only", "date,a,OT\n", [], ["no rows", "series.csv"]),
    ("not utf-8", b"date,OT\n2021-01-01,\xff\xfe\n", [], ["not UTF-8", "series.csv"]),
    (
        "ragged rows",
        replace_line(5, "2021-01-01 04:00:00,1,2,3,4"),
        [],
        ["could not be parsed", "series.csv", "line 6"],
    ),
    ("unknown target", GOOD, ["data.target=price"], ["data.target", "'price'", "series.csv", "it has a, OT"]),
    ("unknown date column", GOOD, ["data.date_column=time"], ["data.date_column", "'time'"]),
    (
        "non-numeric value",
        replace_line(10, "2021-01-01 09:00:00,1,hot"),
        [],
        ["'OT'", "non-numeric value 'hot'", "line 11"],
    ),
    ("missing value", replace_line(12, "2021-01-01 11:00:00,1,"), [], ["'OT'", "a missing value", "line 13"]),
    ("unsorted dates", replace_line(20, "2020-12-31 00:00:00,1,2"), [], ["not sorted", "line 21"]),
    ("duplicated dates", replace_line(3, "2021-01-01 01:00:00,1,2"), [], ["repeats the date", "line 4"]),
    ("split too short", GOOD, ["data.seq_len=100", "data.horizon=50"], ["split has", "data.seq_len + data.horizon"]),
    ("zero learning rate", GOOD, ["optimizer.lr=0"], ["optimizer.lr must be a positive number"]),
    ("negative learning rate", GOOD, ["optimizer.lr=-0.1"], ["optimizer.lr"]),
    ("zero batch size", GOOD, ["data.batch_size=0"], ["data.batch_size must be a positive integer"]),
    ("dropout of one", GOOD, ["model.net.dropout=1.0"], ["model.net.dropout must be in [0, 1)"]),
    ("negative dropout", GOOD, ["model.net.dropout=-0.1"], ["model.net.dropout"]),
    ("unknown feature mode", GOOD, ["data.features=X"], ["data.features must be one of S, M, MS"]),
    ("unknown cell", GOOD, ["model.net.cell=transformer"], ["model.net.cell"]),
    ("unknown loss", GOOD, ["model.loss=l3"], ["model.loss"]),
    ("unknown optimizer", GOOD, ["optimizer=adamx"], ["optimizer/adamx"]),
    ("unknown scheduler", GOOD, ["scheduler=triangle"], ["scheduler/triangle"]),
    ("unknown precision", GOOD, ["precision=8"], ["precision/8"]),
    ("typo in a key", GOOD, ["trainer.max_epoch=3"], ["trainer.max_epoch"]),
    ("clipping without threshold", GOOD, ["clipping=norm", "clipping.max=0"], ["clipping.max"]),
    ("plateau on a train metric", GOOD, ["scheduler=plateau", "scheduler.monitor=train/loss"], ["scheduler.monitor"]),
    (
        "plateau on a metric never logged",
        GOOD,
        ["scheduler=plateau", "scheduler.monitor=val/acc"],
        ["scheduler.monitor must name a metric the task logs", "val/mse", "'val/acc'"],
    ),
    ("early stopping on a metric never logged", GOOD, ["early_stopping.monitor=val/rmse"], ["early_stopping.monitor"]),
    ("bad borders", GOOD, ["data.borders=[100,50,200]"], ["data.borders"]),
    ("segments that do not tile the input", GOOD, ["model=segrnn", "model.net.seg_len=3"], ["seg_len=3", "seq_len=8"]),
    ("segments that do not tile the horizon", GOOD, ["model=segrnn", "model.net.seg_len=8"], ["data.horizon=4"]),
    ("parallel decoder without segments", GOOD, ["model.net.decoder=parallel"], ["model.net.seg_len > 0"]),
    ("unknown decoder", GOOD, ["model.net.decoder=beam"], ["model.net.decoder must be one of direct, parallel"]),
    (
        "channel embedding on a joint model",
        GOOD,
        ["model=segrnn", "model.net.seg_len=4", "model.net.channel_independent=false", "data.features=M"],
        ["model.net.channel_embedding needs", "channel_independent=true"],
    ),
    ("no training batch", GOOD, ["trainer.limit_train_batches=0"], ["trainer.limit_train_batches=0 trains nothing"]),
    ("training share of zero", GOOD, ["data.train_fraction=0"], ["data.train_fraction must be in (0, 1]; got 0"]),
    (
        "fine-tuning from nowhere",
        GOOD,
        ["finetune=weights", "finetune.from=absent_run"],
        ["finetune.from: no checkpoint file or run dir at absent_run"],
    ),
    ("freezing a part the net lacks", GOOD, ["finetune.freeze=[encoder]"], ["finetune.freeze", "'encoder'", "layers"]),
    (
        "a negative lr scale",
        GOOD,
        ["finetune.lr_scales={layers: -1}"],
        ["finetune.lr_scales.layers must be a positive number; got -1"],
    ),
]


# Rows also run through `python train.py`: one per kind of failure path in the fast tier (Hydra's
# composition, a config check, a data file, a metric name, a model's shape), the rest in the slow one:
# each row of a path already taken costs a process that imports torch (5 s). All rows run in-process too.
CLI_ROWS = {
    "missing file": None,
    "not utf-8": "missing file",
    "unknown target": "missing file",
    "non-numeric value": "missing file",
    "zero learning rate": None,
    "unknown optimizer": None,
    "typo in a key": "unknown optimizer",
    "plateau on a metric never logged": None,
    "segments that do not tile the input": None,
}


def case_args(tmp_path: Path, text: str | bytes | None, overrides: list[str]) -> list[str]:
    path = csv_file(tmp_path, text) if text is not None else tmp_path / "absent.csv"
    return [*csv_args(path), *overrides]


@pytest.mark.parametrize(("text", "overrides", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_training(text, overrides, expected, tmp_path):
    args = case_args(tmp_path, text, overrides)
    inputs = set(tmp_path.rglob("*"))
    with pytest.raises(Exception) as info:
        train(compose_cfg(args, tmp_path))  # Hydra's compose raises for unknown keys and options
    err = info.value
    assert isinstance(err, HydraException) or user_message(err), repr(err)  # ours or Hydra's, never a crash
    message = user_message(err) or str(err)
    for fragment in expected:
        assert fragment in message, (fragment, message)
    assert nothing_half_written(set(tmp_path.rglob("*")) - inputs)


CLI_CASES = [
    pytest.param(
        *case[1:],
        id=case[0],
        marks=[pytest.mark.slow(reason=f"the failure path of {CLI_ROWS[case[0]]!r}, which the fast tier runs")]
        if CLI_ROWS[case[0]]
        else [],
    )
    for case in CASES
    if case[0] in CLI_ROWS
]


@pytest.mark.parametrize(("text", "overrides", "expected"), CLI_CASES)
def test_bad_input_gives_one_line_on_the_command_line(text, overrides, expected, tmp_path):
    fails_cleanly(case_args(tmp_path, text, overrides), tmp_path, expected)


def fails_cleanly(args: list[str], tmp_path: Path, expected: list[str], runner: Callable = run_train) -> None:
    """`python train.py ARGS` exits non-zero with one line naming the problem, no traceback, nothing half-written."""
    inputs = set(tmp_path.rglob("*"))
    result = runner([f"paths.log_dir={tmp_path / 'logs'}", "trainer.max_epochs=1", *args], cwd=tmp_path)
    assert result.returncode != 0
    message = result.stderr
    for fragment in expected:
        assert fragment in message, (fragment, message)
    assert "Traceback" not in message
    # our own errors: one line; Hydra's: its usual short form
    assert sum(line.startswith("error: ") for line in message.splitlines()) <= 1
    written = set(tmp_path.rglob("*")) - inputs
    assert nothing_half_written(written)
    for record in (p for p in written if p.name == "metrics.json"):  # a run that started records why it failed
        summary = json.loads(record.read_text())
        assert summary["status"] == "failed" and expected[0] in summary["error"]


def nothing_half_written(written: set[Path]) -> bool:
    """No checkpoint, event file, temporary file or data cache among the files a failed run created."""
    names = [p.name for p in written]
    return (
        not [
            n
            for n in names
            if n.endswith((".ckpt", ".tmp")) or n.startswith(("events.out", "cifar10_uint8", ".extract"))
        ]
        and "cifar-10-batches-py" not in names
    )


def cifar_archive(tmp_path: Path, damage: str) -> list[str]:
    """A generated CIFAR-10 archive in the official format, damaged in one way; returns the data overrides."""
    path = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    write_archive(path)
    good_md5 = hashlib.md5(path.read_bytes()).hexdigest()
    data = bytearray(path.read_bytes())
    if damage == "flipped":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncated":
        del data[len(data) // 2 :]
    else:  # a well-formed tar.gz of something else
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            add_file(tar, "notes/readme.txt", b"not images")
        data = bytearray(buffer.getvalue())
    path.write_bytes(bytes(data))
    md5 = good_md5 if damage == "flipped" else "null"
    return ["data=cifar10", f"data.root={path.parent}", f"data.md5={md5}", "model=cnn", "data.val_size=100"]


def foreign_checkpoint(tmp_path: Path, kind: str) -> list[str]:
    """A checkpoint the LSTM of this table cannot load: other weights, or not a checkpoint at all."""
    path = tmp_path / "given.ckpt"
    if kind == "other model":
        other = nn.GRU(3, 5)  # a Lightning-style checkpoint of a different network
        torch.save({"state_dict": {f"net.{k}": v for k, v in other.state_dict().items()}}, path)
    else:
        path.write_bytes(b"these are not tensors" * 10)
    return [*csv_args(csv_file(tmp_path, GOOD)), f"ckpt_path={path}"]


def csv_args(path: Path) -> list[str]:
    return ["data=csv", f"data.path={path}", "data.seq_len=8", "data.horizon=4", "data.ratios=[0.6,0.2,0.2]"]


FILE_CASES = [
    ("corrupt CIFAR archive", lambda t: cifar_archive(t, "flipped"), ["has md5", "data.md5"]),
    ("truncated CIFAR archive", lambda t: cifar_archive(t, "truncated"), ["not a readable tar.gz archive"]),
    ("archive without CIFAR batches", lambda t: cifar_archive(t, "other"), ["has no cifar-10-batches-py/ folder"]),
    ("checkpoint of another model", lambda t: foreign_checkpoint(t, "other model"), ["holds the weights of another"]),
    ("file that is not a checkpoint", lambda t: foreign_checkpoint(t, "junk"), ["is not a checkpoint of this project"]),
]


@pytest.mark.parametrize(("make", "expected"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_bad_files_give_a_clear_message(make, expected, tmp_path):
    """In this process (run_app: the same app, its stderr captured); the process's own one-line exit is
    test_bad_input_gives_one_line_on_the_command_line's subject."""
    fails_cleanly(make(tmp_path), tmp_path, expected, runner=run_app)
