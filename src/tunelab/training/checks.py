"""Checks of the training keys that must hold before any work starts, each naming its key."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from tunelab.errors import UserError

PRECISIONS = ("32-true", "32", "64-true", "64", "16-mixed", "bf16-mixed", "16-true", "bf16-true")
CLIP_ALGORITHMS = (None, "norm", "value")


def check_config(cfg: DictConfig) -> None:
    """Raise UserError for values that would fail later, deep inside Lightning or torch."""
    lr = cfg.optimizer.get("lr")
    if not isinstance(lr, int | float) or lr <= 0:
        raise UserError(f"optimizer.lr must be a positive number; got {lr!r}")
    if cfg.optimizer.get("weight_decay", 0) < 0:
        raise UserError(f"optimizer.weight_decay must be >= 0; got {cfg.optimizer.weight_decay}")

    max_epochs = cfg.trainer.get("max_epochs")
    if max_epochs is not None and max_epochs != -1 and max_epochs <= 0:
        raise UserError(f"trainer.max_epochs must be positive (or -1 for no limit); got {max_epochs}")
    precision = str(cfg.trainer.get("precision"))
    if precision not in PRECISIONS:
        raise UserError(f"trainer.precision must be one of {', '.join(PRECISIONS)}; got '{precision}'")

    algorithm, threshold = cfg.clipping.get("algorithm"), cfg.clipping.get("max")
    if algorithm not in CLIP_ALGORITHMS:
        raise UserError(f"clipping.algorithm must be norm, value or null; got '{algorithm}'")
    if algorithm is not None and (not isinstance(threshold, int | float) or threshold <= 0):
        raise UserError(
            f"clipping.max must be a positive number with clipping.algorithm={algorithm}; got {threshold!r}"
        )

    ckpt_path, resume = cfg.get("ckpt_path"), cfg.get("resume")
    if ckpt_path not in (None, "last", "best") and not Path(ckpt_path).is_file():
        raise UserError(f"ckpt_path: no checkpoint file at {ckpt_path}")
    if resume and not (Path(resume) / "checkpoints" / "last.ckpt").is_file():
        raise UserError(f"resume: {resume} holds no checkpoints/last.ckpt to continue from")

    monitor = cfg.scheduler.get("monitor")
    if cfg.scheduler.get("name") == "plateau" and (not monitor or not str(monitor).startswith("val/")):
        raise UserError(f"scheduler.monitor must name a val/ metric for scheduler=plateau; got {monitor!r}")
