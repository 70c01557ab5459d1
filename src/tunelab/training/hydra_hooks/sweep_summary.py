"""After a multirun: one table of every job (CSV and markdown) and the best job as a reusable config."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from tunelab.training.hydra_hooks.output_check import output_root
from tunelab.training.run.run_files import write_text_atomic

# Overrides that describe the machine, not the experiment: left out of the table and of best.yaml.
_LOCAL_PREFIXES = ("paths.", "hydra.", "hparams_search")
# Groups that choose how to run, not what to train; train.yaml lists them after `experiment`, so an
# experiment config could not set them anyway.
_RUN_MODES = ("debug", "hparams_search")


class SweepSummary(Callback):
    """At the end of a multirun, write `sweep_summary.csv`, `sweep_summary.md` and `best.yaml` in the sweep root.

    When every job failed, it prints one line and exits with status 1.
    Rows come from each job directory's `.hydra/overrides.yaml` and `metrics.json` (written by every
    job, failed ones included), sorted by `optimized_metric`, lower first: finished jobs, then pruned
    ones (by the value they were pruned on), then failed ones. With several sweep processes on one
    sweep dir (Optuna workers), each rewrites the summary when it ends, the last with every job.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = output_root(config, "sweep")
        metric = config.get("optimized_metric") or "val/loss"
        rows = sorted((job_row(d) for d in job_dirs(root)), key=lambda r: sort_key(r, metric))
        if not rows:
            return
        write_text_atomic(root / "sweep_summary.csv", to_csv(rows))
        write_text_atomic(root / "sweep_summary.md", to_markdown(rows, metric))
        best = rows[0]
        if best["status"] == "ok":
            groups = {name for name in config.hydra.runtime.choices if not name.startswith("hydra")}
            write_text_atomic(root / "best.yaml", best_config(best, metric, root, groups))
        elif all(r["status"] == "failed" for r in rows):  # the sweep as a whole failed: so says its exit status
            first = next((r["error"] for r in rows if r.get("error")), "no metrics.json")
            print(f"error: all {len(rows)} jobs of the sweep failed, the first with: {first}", file=sys.stderr)
            sys.exit(1)


def job_dirs(root: Path) -> list[Path]:
    return sorted(p.parent.parent for p in root.glob("*/.hydra/overrides.yaml"))


def job_row(job_dir: Path) -> dict[str, Any]:
    overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    overrides = [o for o in overrides if not o.lstrip("+~").startswith(_LOCAL_PREFIXES)]
    row: dict[str, Any] = {"job": job_dir.name, "overrides": " ".join(overrides), "status": "missing"}
    summary_file = job_dir / "metrics.json"
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        row.update(
            status=summary.get("status", "missing"),
            epochs=summary.get("epochs"),
            seconds=summary.get("seconds"),
            error=summary.get("error", ""),
        )
        row.update(summary.get("metrics", {}))
    row["_overrides"] = overrides
    return row


def sort_key(row: dict[str, Any], metric: str) -> tuple[int, float]:
    value = row.get(metric)
    rank = {"ok": 0, "pruned": 1}.get(row["status"], 2)
    return (rank, value) if rank < 2 and isinstance(value, int | float) and math.isfinite(value) else (2, math.inf)


def columns(rows: list[dict[str, Any]]) -> list[str]:
    metrics = sorted({k for r in rows for k in r if k.startswith(("val/", "test/"))})
    return ["job", "overrides", "status", *metrics, "epochs", "seconds", "error"]


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns(rows), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def to_markdown(rows: list[dict[str, Any]], metric: str) -> str:
    cols = [c for c in columns(rows) if c != "error" or any(r.get("error") for r in rows)]

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        f"Sorted by {metric} (lower is better); pruned jobs (value when pruned) after finished ones, failed last.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + " --- |" * len(cols),
    ]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def best_config(row: dict[str, Any], metric: str, root: Path, groups: set[str]) -> str:
    """The best job's overrides as an experiment config: copy to conf/experiment/ and run experiment=NAME.

    `groups` are the config group names: their overrides become defaults-list entries.
    """
    defaults: list[str | dict[str, Any]] = []
    values: dict[str, Any] = {}
    for override in row["_overrides"]:
        key, _, raw = override.lstrip("+").partition("=")
        value = yaml.safe_load(raw) if raw else None
        if key in _RUN_MODES:
            continue
        if key == "experiment":
            defaults.insert(0, str(value))  # another experiment in the same group: included first
        elif key in groups:
            defaults.append({f"override /{key}": value})
        else:
            node = values
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
    header = (
        f"# @package _global_\n# Best job of the sweep in {root}: {metric} = {row.get(metric)} "
        f"(job {row['job']}).\n# Copy into conf/experiment/ and run: python train.py experiment=<name>\n"
    )
    body = {"defaults": [*defaults, "_self_"], **values} if defaults else values
    return header + yaml.safe_dump(body, sort_keys=False)
