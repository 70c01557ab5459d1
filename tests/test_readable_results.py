"""What a user reads: seed-grouped summaries, HPARAMS in a real TensorBoard, exact accuracy, one error line."""

from __future__ import annotations

import csv
import json
import statistics
import urllib.request
from functools import partial
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import SYNTHETIC, run_app, run_train, tensorboard_server
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tunelab.tasks.classify import ClassifyTask
from tunelab.training.run.naming import short

QUICK = [*SYNTHETIC, "debug=limit", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def sweep(tmp_path: Path, *args: str) -> Path:
    root = tmp_path / "sweep"
    result = run_app(["-m", *args, *QUICK, f"hydra.sweep.dir={root}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_a_seed_sweep_is_grouped_by_configuration_with_mean_and_std(tmp_path):
    root = sweep(tmp_path, "optimizer=sgd,adam", "seed=0,1,2", "logger=none")
    jobs = read_csv(root / "sweep_summary.csv")
    assert len(jobs) == 6 and {"optimizer", "seed"} <= set(jobs[0])  # swept keys as columns

    groups = read_csv(root / "sweep_groups.csv")
    assert sorted(g["optimizer"] for g in groups) == ["adam", "sgd"] and "seed" not in groups[0]
    for group in groups:
        values = [float(j["val/mse"]) for j in jobs if j["optimizer"] == group["optimizer"]]
        assert (group["jobs"], group["finished"]) == ("3", "3")
        assert float(group["val/mse"]) == pytest.approx(statistics.fmean(values))
        assert float(group["val/mse std"]) == pytest.approx(statistics.stdev(values))
    assert float(groups[0]["val/mse"]) <= float(groups[1]["val/mse"])  # ranked by the mean

    markdown = (root / "sweep_summary.md").read_text()
    assert markdown.count("data.seq_len=24") == 1  # constants once, above the table
    rows = [line for line in markdown.splitlines() if line.startswith(("| adam", "| sgd"))]
    assert len(rows) == 2 and all(" ± " in row and "3 of 3" in row for row in rows)
    assert (
        "mean of 3 seeds" in (root / "best.yaml").read_text()
        and "seed" not in (root / "best.yaml").read_text().split("\n", 3)[3]
    )


def test_hparams_show_the_swept_choices_first_and_no_plumbing_and_runs_are_named_by_them(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    loggers = "logger=[tensorboard,mlflow]"
    root = sweep(tmp_path, "optimizer=sgd,adam", "scheduler=step,cosine", loggers, f"paths.log_dir={tmp_path}")
    with tensorboard_server(root) as url:
        request = urllib.request.Request(
            f"{url}/data/plugin/hparams/experiment", data=b"{}", headers={"Content-Type": "application/json"}
        )
        experiment = json.load(urllib.request.urlopen(request, timeout=30))
        runs = json.load(urllib.request.urlopen(f"{url}/data/runs", timeout=30))
    # TensorBoard's run list and MLflow's runs: four names, each holding the values its job was given
    combos = {f"optimizer={o},scheduler={s}" for o in ("sgd", "adam") for s in ("step", "cosine")}
    assert {run.rpartition("/")[2] for run in runs} == combos
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow_runs = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    names = [r.info.run_name for r in mlflow_runs]
    assert len(set(names)) == 4 and {n.partition(" @ ")[0] for n in names} == combos
    for run in mlflow_runs:  # the name's suffix is the job's dir, as its tag says in full
        assert run.data.tags["run_dir"].endswith(run.info.run_name.partition(" @ ")[2])
    names = [info["name"] for info in experiment["hparamInfos"]]
    assert set(names[:2]) == {"optimizer", "scheduler"}  # what the sweep varied, first
    assert {"optimizer/lr", "model/net/hidden_sizes", "data/seq_len", "data/batch_size", "seed"} <= set(names)
    assert not [n for n in names if "_target_" in n or n.startswith(("paths", "callbacks", "hydra"))]
    # every name is a knob of what is trained or how long and how precisely: no count cap that new knobs trip
    sections = {"data", "model", "optimizer", "scheduler", "clipping", "early_stopping", "finetune"}
    assert {n.split("/")[0] for n in names} <= sections | {"precision", "trainer", "seed", "recipe"}
    assert {n for n in names if n.startswith("trainer/")} <= {"trainer/precision", "trainer/max_epochs"}
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"val/mse", "test/mse"} <= metrics


class Oracle(nn.Module):
    """Reads the label written into pixel 0 of each image: a perfect classifier of a separable set."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(x[:, 0, 0, 0].long(), 10).float() * 10 * self.scale


def test_accuracy_is_exactly_one_on_a_separable_set():
    labels = torch.arange(997) % 10  # 15 full batches of 64 and a partial one
    images = torch.zeros(997, 3, 4, 4)
    images[:, 0, 0, 0] = labels.float()
    loader = DataLoader(TensorDataset(images, labels), batch_size=64)
    task = ClassifyTask(Oracle(), partial(torch.optim.SGD, lr=0.0), {"name": "constant"}, [str(i) for i in range(10)])
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False)
    assert trainer.validate(task, loader, verbose=False)[0]["val/acc"] == 1.0
    tested = trainer.test(task, loader, verbose=False)[0]
    assert tested["test/acc"] == 1.0 and all(tested[f"test/acc_{i}"] == 1.0 for i in range(10))


def test_an_error_line_appears_once_on_the_terminal(tmp_path):
    result = run_train(["optimizer.lr=-1", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 1
    terminal = (result.stdout + result.stderr).splitlines()
    assert [line for line in terminal if "optimizer.lr must be" in line] == [
        "error: optimizer.lr must be a positive number; got -1"
    ]
    (log_file,) = tmp_path.rglob("train.log")
    assert "optimizer.lr must be a positive number" in log_file.read_text()  # and kept in the run's log


def test_an_mlflow_run_holds_metrics_hparams_and_figures(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    result = run_app(["logger=[tensorboard,mlflow]", *QUICK, f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    (summary,) = tmp_path.rglob("metrics.json")
    tested = json.loads(summary.read_text())["metrics"]["test/mse"]
    assert run.data.metrics["test/mse"] == pytest.approx(tested)  # the same numbers as TensorBoard and metrics.json
    params = run.data.params
    assert params["optimizer"] == "adam" and float(params["optimizer/lr"]) == 0.001 and params["data/seq_len"] == "24"
    assert not [k for k in params if "_target_" in k or k.startswith(("paths", "callbacks"))]
    assert [a.path for a in client.list_artifacts(run.info.run_id, "test")] == ["test/forecast.png"]
    assert list(summary.parent.glob("tensorboard/*/events.*"))  # both loggers at once


def test_drawn_numbers_are_short_in_run_names_and_other_values_as_given():
    assert short("optimizer.lr=0.0009458439114187642") == "optimizer.lr=0.0009458"
    assert [short(o) for o in ("seed=12", "optimizer=adam", "model.net.hidden_sizes=[64]")] == [
        "seed=12",
        "optimizer=adam",
        "model.net.hidden_sizes=[64]",
    ]


def wandb_records(path: Path) -> list:
    """The records of an offline W&B run file (run-<id>.wandb) as wandb's own protobuf messages.

    wandb >= 0.2x reads these files in its Go core only; the format is a 7-byte header (":W&B", magic, version),
    then LevelDB's log format: 32 KiB blocks of chunks, each a 7-byte header (crc32, length, type: full, first,
    middle, last) and its bytes, the tail of a block too short for a header left as padding.
    """
    from wandb.proto import wandb_internal_pb2

    data, records, pending, offset = path.read_bytes(), [], b"", 7
    assert data[:4] == b":W&B", path
    while offset + 7 <= len(data):
        room = 32768 - offset % 32768
        if room < 7:
            offset += room
            continue
        length, kind = int.from_bytes(data[offset + 4 : offset + 6], "little"), data[offset + 6]
        chunk, offset = data[offset + 7 : offset + 7 + length], offset + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4) and pending:
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def name(item) -> str:
    """A config or history item's key (wandb writes it whole in `key`, or as the parts of `nested_key`)."""
    return item.key or ".".join(item.nested_key)


def test_each_job_of_a_multirun_has_an_offline_wandb_run_with_its_metrics_hparams_and_figures(tmp_path):
    """Each job of an in-process multirun ends its W&B run: before, Lightning's WandbLogger reused the open run,
    so the second job logged into the first one's (one run file for two jobs)."""
    pytest.importorskip("wandb")
    result = run_app(["-m", "logger=wandb", *QUICK, "optimizer.lr=0.001,0.002", f"paths.log_dir={tmp_path}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = sorted(tmp_path.rglob("metrics.json"))
    assert len(summaries) == 2
    for summary, lr in zip(summaries, (0.001, 0.002), strict=True):
        (run_file,) = summary.parent.glob("wandb/offline-run-*/run-*.wandb")
        records = wandb_records(run_file)
        (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        where = f"{summary.parent.parent.name}/{summary.parent.name}"  # what the run varies, and its dir
        assert run.project == "train" and run.display_name == f"optimizer.lr={lr} @ {where}"
        config = {name(i): json.loads(i.value_json) for r in records if r.HasField("config") for i in r.config.update}
        assert config["optimizer"] == "adam" and config["optimizer/lr"] == lr and config["data/seq_len"] == 24
        logged = {name(i): json.loads(i.value_json) for r in records if r.HasField("history") for i in r.history.item}
        tested = json.loads(summary.read_text())["metrics"]["test/mse"]
        assert logged["test/mse"] == pytest.approx(tested) and "val/mse" in logged  # the numbers of metrics.json
        assert list(run_file.parent.glob("files/media/images/test/forecast_*.png"))  # the figure


@pytest.mark.slow(reason="two processes with W&B (25 s)")
def test_a_resumed_run_logs_on_into_its_wandb_run(tmp_path):
    pytest.importorskip("wandb")
    first = run_train(["logger=wandb", *QUICK, "trainer.max_epochs=1", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (summary,) = tmp_path.rglob("metrics.json")
    resumed = run_train([f"resume={summary.parent}", "trainer.max_epochs=2"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = [
        r.run
        for f in summary.parent.glob("wandb/offline-run-*/run-*.wandb")
        for r in wandb_records(f)
        if r.HasField("run")
    ]
    assert len(runs) == 2 and runs[0].run_id == runs[1].run_id  # one W&B run id: `wandb sync` joins them
