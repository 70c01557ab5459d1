"""train.py's Hydra entry point: one job around the training pipeline (tunelab.train).

What a job does before and after training: a job an earlier pass of its sweep finished returns that
result, a config that fails its checks ends in one line, a failure is recorded in metrics.json, and the
result goes back to the sweeper. Free of torch and Lightning at import, so that `--help`, `--cfg`,
`--info` and a refused command start in a second or two: the pipeline is imported once the config passed
its checks.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Mapping
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from tunelab.errors import quiet_write_failures, report, user_message
from tunelab.training.hydra_hooks import resolvers
from tunelab.training.run.checks import check_config
from tunelab.training.run.resume import record_resumed_config
from tunelab.training.run.run_files import write_json_atomic
from tunelab.training.run.sweep_resume import continue_cut_job, earlier_result

log = logging.getLogger(__name__)

resolvers.register()  # ${run_id:} and ${or:...} (conf/hydra/default.yaml), ${when:...} (conf/trainer)


def main(cfg: DictConfig) -> float | list[float] | None:
    """Hydra entry point: train, report where the logs are, return `optimized_metric` (or the task's) for sweepers:
    one value, or a list in its order when it names several metrics.

    A failed job records its error in metrics.json (a resume refused before it starts leaves the run's
    records untouched). Alone, it exits with the message (bad input) or
    the traceback (a bug); inside a multirun it returns NaN instead, so the sweep records it as failed
    and goes on (Optuna marks a NaN trial as failed).
    """
    quiet_write_failures()
    if (earlier := earlier_result(cfg)) is not None:  # a restarted sweep: this job is done (sweep_resume.py)
        given = earlier.get("optimized_metric") or []
        return objective_values(earlier.get("metrics", {}), [given] if isinstance(given, str) else given)
    continue_cut_job(cfg)
    job = None
    try:
        check_config(cfg)  # before the imports below, so that a refused command ends in a second or two
        from tunelab.train import fit_and_test, prepare  # torch and Lightning: only a job that trains loads them

        job = prepare(cfg)
        if cfg.resume:  # the resumed run has passed its checks: now its records may change
            record_resumed_config(cfg)
        metrics = fit_and_test(cfg, job)
    except Exception as err:
        known = user_message(err, cfg.paths.output_dir)
        message = f"error: {known or repr(err)}"
        if job is not None or not cfg.resume:  # a refused resume leaves the run's metrics.json as it was
            try:
                write_json_atomic(Path(cfg.paths.output_dir) / "metrics.json", {"status": "failed", "error": message})
            except OSError as write_err:  # the failure may be the full or read-only disk itself
                log.error(f"metrics.json not written: {write_err}")
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            log.exception(message)
            return float("nan")
        if known is None:
            raise
        report(message)
        sys.exit(1)
    log.info(f"Run directory: {cfg.paths.output_dir}")
    targets = [str(v.get("_target_")) for v in (cfg.logger or {}).values() if isinstance(v, DictConfig)]
    if any("TensorBoardLogger" in t for t in targets):
        log.info(f"View it with: tensorboard --logdir {cfg.paths.output_dir}")
    if any("MLFlowLogger" in t for t in targets):
        log.info(f"View it with: mlflow ui --backend-store-uri {cfg.logger.mlflow.tracking_uri}")
    return objective_values(metrics, job.objectives)


def objective_values(metrics: Mapping[str, float], objectives: list[str]) -> float | list[float]:
    """The values a sweeper is told: one float, or a list in the order of `objectives`; NaN for a missing one."""
    values = [metrics.get(name) for name in objectives] or [None]
    values = [float("nan") if v is None or not math.isfinite(v) else v for v in values]
    return values[0] if len(values) == 1 else values
