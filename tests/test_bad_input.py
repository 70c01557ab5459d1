"""Bad input stops `python train.py` with one clear message naming the key or file, and leaves no artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_train

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
    ("bad borders", GOOD, ["data.borders=[100,50,200]"], ["data.borders"]),
]


@pytest.mark.parametrize(("text", "overrides", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_a_clear_message(text, overrides, expected, tmp_path):
    path = csv_file(tmp_path, text) if text is not None else tmp_path / "absent.csv"
    args = [
        "data=csv",
        f"data.path={path}",
        "data.seq_len=8",
        "data.horizon=4",
        "data.ratios=[0.6,0.2,0.2]",
        f"paths.log_dir={tmp_path / 'logs'}",
        "trainer.max_epochs=1",
        *overrides,
    ]
    result = run_train(args, cwd=tmp_path)
    assert result.returncode != 0
    message = result.stderr
    for fragment in expected:
        assert fragment in message, (fragment, message)
    assert "Traceback" not in message
    # our own errors: one line; Hydra's: its usual short form
    assert sum(line.startswith("error: ") for line in message.splitlines()) <= 1
    # nothing half-written: no checkpoint, no event files; a run that started records why it failed
    logs = list((tmp_path / "logs").rglob("*"))
    assert [p.name for p in logs if p.suffix == ".ckpt" or p.name.startswith("events.out")] == []
    for record in (p for p in logs if p.name == "metrics.json"):
        summary = json.loads(record.read_text())
        assert summary["status"] == "failed" and expected[0] in summary["error"]
