"""A sweep's job dirs as rows: each job's swept values, status and metrics, and the sweep's objectives."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

# Overrides that describe the machine, not the experiment: left out of the table and of best.yaml.
_LOCAL_PREFIXES = ("paths.", "hydra.", "hparams_search")
# Job dirs of the Optuna sweeper's confirmation phase (confirm_<trial>_seed<seed>_<digest>): the search's best
# configurations run again on several seeds; ranked apart from the search, by their mean.
CONFIRM_PREFIX = "confirm_"


def sweep_inputs(config: DictConfig, root: Path) -> tuple[list[dict[str, Any]], list[str], list[int]]:
    """The sweep's job rows, its objectives (`optimized_metric`, one or several) and each one's sign."""
    rows = [job_row(d) for d in job_dirs(root)]
    # optimized_metric null: the task's own, which each job records
    given = config.get("optimized_metric") or next((r["_metric"] for r in rows if r["_metric"]), "val/loss")
    objectives = [given] if isinstance(given, str) else list(given)
    return rows, objectives, objective_signs(config, objectives)


def job_dirs(root: Path) -> list[Path]:
    """Job dirs in job number order (their names start with it); the confirmation phase's last."""
    dirs = [p.parent.parent for p in root.glob("*/.hydra/overrides.yaml")]
    return sorted(dirs, key=lambda d: job_order(d.name))


def job_order(name: str) -> tuple[float, str]:
    number = name.split("_")[0]
    return int(number) if number.isdigit() else math.inf, name


def job_row(job_dir: Path) -> dict[str, Any]:
    overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    overrides = [o for o in overrides if not o.lstrip("+~").startswith(_LOCAL_PREFIXES)]
    row: dict[str, Any] = {"job": job_dir.name, "overrides": " ".join(overrides), "status": "missing", "_metric": None}
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
        row["_metric"] = summary.get("optimized_metric")
    row["_values"] = dict(o.lstrip("+").partition("=")[::2] for o in overrides)
    return row


def split_overrides(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """The override keys whose value differs between jobs (in command-line order), and the constant ones."""
    keys = list(dict.fromkeys(k for r in rows for k in r["_values"]))
    params = [k for k in keys if len({r["_values"].get(k) for r in rows}) > 1]
    constants = {k: rows[0]["_values"][k] for k in keys if k not in params}
    return params, constants


def objective_signs(config: DictConfig, objectives: list[str]) -> list[int]:
    """-1 for each objective the sweeper's `direction` maximises, 1 for the others; without a direction (a grid
    sweep), accuracies are maximised and everything else (losses, errors, sizes, times) minimised."""
    given = OmegaConf.select(config, "hydra.sweeper.direction", default=None)
    listed = [str(d) for d in given] if OmegaConf.is_list(given) else [str(given)] if given is not None else []
    signs = []
    for i, metric in enumerate(objectives):
        guess = "maximize" if metric.rpartition("/")[2].startswith("acc") else "minimize"
        signs.append(-1 if (listed[i] if i < len(listed) else guess) == "maximize" else 1)
    return signs
