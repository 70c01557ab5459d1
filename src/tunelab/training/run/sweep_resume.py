"""A multirun started again on its sweep dir (`hydra.sweep.dir=<dir>`) runs only what is not done.

Hydra's basic sweeper, and its joblib and submitit launchers, start every job of a multirun again. Each
job dir is named by the job's number and a digest of its overrides (conf/hydra/default.yaml), so the
same job of the same command finds its own dir again, and what an earlier pass left there decides:
a finished job (`status: ok` or `pruned` in metrics.json) is not run again and returns its recorded
result; a job cut off mid-run (a last.ckpt, no metrics.json) continues from its last.ckpt, as
`resume=` does for one run; a failed job stays failed unless `retry_failed=true`, which runs it anew.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def earlier_result(cfg: DictConfig) -> dict[str, Any] | None:
    """The metrics.json that an earlier pass of this sweep left in this job's dir, when it settles the job."""
    if not in_multirun():
        return None
    try:
        summary = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    status = summary.get("status")
    if status in ("ok", "pruned") or (status == "failed" and not cfg.get("retry_failed")):
        again = "" if status != "failed" else "; retry_failed=true runs it again"
        log.info(f"{cfg.paths.output_dir}: {status} in an earlier pass of this sweep, not run again{again}")
        return summary
    return None


def continue_cut_job(cfg: DictConfig) -> None:
    """Point a job that an earlier pass left without a result at its own last.ckpt."""
    output = Path(cfg.paths.output_dir)
    cut = not (output / "metrics.json").exists() and (output / "checkpoints" / "last.ckpt").is_file()
    if in_multirun() and cut and cfg.get("ckpt_path") is None:
        log.info(f"{output}: cut off in an earlier pass of this sweep, continuing from its last.ckpt")
        with open_dict(cfg):
            cfg.ckpt_path = "last"
