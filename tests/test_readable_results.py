"""What a user reads after a sweep: seed-grouped summaries and the HPARAMS tab of a real TensorBoard."""

from __future__ import annotations

import csv
import json
import statistics
import urllib.request
from pathlib import Path

import pytest
from conftest import SYNTHETIC, run_train, tensorboard_server

QUICK = [*SYNTHETIC, "debug=limit", "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def sweep(tmp_path: Path, *args: str) -> Path:
    root = tmp_path / "sweep"
    result = run_train(["-m", *args, *QUICK, f"hydra.sweep.dir={root}"], cwd=tmp_path)
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


def test_hparams_show_the_swept_choices_first_and_no_plumbing(tmp_path):
    root = sweep(tmp_path, "optimizer=sgd,adam", "scheduler=step,cosine", "logger=tensorboard")
    with tensorboard_server(root) as url:
        request = urllib.request.Request(
            f"{url}/data/plugin/hparams/experiment", data=b"{}", headers={"Content-Type": "application/json"}
        )
        experiment = json.load(urllib.request.urlopen(request, timeout=30))
    names = [info["name"] for info in experiment["hparamInfos"]]
    assert set(names[:2]) == {"optimizer", "scheduler"}  # what the sweep varied, first
    assert {"optimizer/lr", "model/net/hidden_sizes", "data/seq_len", "data/batch_size", "seed"} <= set(names)
    assert not [n for n in names if "_target_" in n or n.startswith(("paths", "callbacks", "hydra"))]
    assert len(names) < 60
    metrics = {info["name"]["tag"] for info in experiment["metricInfos"]}
    assert {"val/mse", "test/mse"} <= metrics
