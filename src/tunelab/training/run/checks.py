"""Checks of the training keys that must hold before any work starts, each naming its key.

Free of torch and Lightning: train.py runs them before it imports either (tunelab.entry).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from tunelab.errors import UserError

# Lightning's, and bf16-native (training/run/precision.py: bf16-mixed where the hardware has bf16, else 32-true)
PRECISIONS = ("32-true", "32", "64-true", "64", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "bf16-native")
CLIP_ALGORITHMS = (None, "norm", "value")


def check_config(cfg: DictConfig) -> None:
    """Raise UserError for values that would fail later, deep inside Lightning or torch."""
    threads = cfg.get("threads")
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise UserError(f"threads must be a positive integer or null; got {threads!r}")
    lr = cfg.optimizer.get("lr")
    if not isinstance(lr, int | float) or lr <= 0:
        raise UserError(f"optimizer.lr must be a positive number; got {lr!r}")
    if cfg.optimizer.get("weight_decay", 0) < 0:
        raise UserError(f"optimizer.weight_decay must be >= 0; got {cfg.optimizer.weight_decay}")

    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and max_epochs != -1 and max_epochs <= 0:
        raise UserError(f"trainer.max_epochs must be positive (or -1 for no limit); got {max_epochs}")
    if cfg.trainer.get("limit_train_batches") == 0:  # Lightning would skip the fit, and the run would look finished
        raise UserError("trainer.limit_train_batches=0 trains nothing; to score a checkpoint, use eval.py")
    precision = str(cfg.trainer.get("precision"))
    if precision not in PRECISIONS:
        raise UserError(f"trainer.precision must be one of {', '.join(PRECISIONS)}; got '{precision}'")

    algorithm, threshold = cfg.clipping.get("algorithm"), cfg.clipping.get("max")
    if algorithm not in CLIP_ALGORITHMS:
        raise UserError(f"clipping.algorithm must be norm, value or null; got '{algorithm}'")
    per_weight = cfg.clipping.get("per_weight")
    if (algorithm is not None or per_weight) and (not isinstance(threshold, int | float) or threshold <= 0):
        how = "clipping=per_weight" if per_weight else f"clipping.algorithm={algorithm}"
        raise UserError(f"clipping.max must be a positive number with {how}; got {threshold!r}")

    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path not in (None, "last", "best") and not Path(ckpt_path).is_file():
        raise UserError(f"ckpt_path: no checkpoint file at {ckpt_path}")


# What every run measures of itself once trained (train.py), beside what the task logs: a search may optimise these.
RUN_METRICS = ("model/params", "time/epoch")


def check_monitors(cfg: DictConfig, logged: Sequence[str]) -> None:
    """Every key that watches a metric (sweeps, plateau LR, early stopping, best checkpoint) names one the task logs;
    `optimized_metric` (one name, or a list for a search of several objectives) may also name a RUN_METRICS one."""
    objectives = cfg.get("optimized_metric")
    for metric in [objectives] if isinstance(objectives, str) else objectives or []:
        if metric not in (*logged, *RUN_METRICS):
            names = ", ".join((*logged, *RUN_METRICS))
            raise UserError(f"optimized_metric must name metrics the run logs ({names}); got {metric!r}")
    watchers = {"callbacks.model_checkpoint.monitor": OmegaConf.select(cfg, "callbacks.model_checkpoint.monitor")}
    watchers["early_stopping.monitor"] = OmegaConf.select(cfg, "early_stopping.monitor")
    if cfg.scheduler.get("name") == "plateau":
        watchers["scheduler.monitor"] = cfg.scheduler.get("monitor") or "(nothing)"
    for key, metric in watchers.items():
        if metric is not None and metric not in logged:
            names = ", ".join(logged)
            raise UserError(f"{key} must name a metric the task logs in validation ({names}); got {metric!r}")
