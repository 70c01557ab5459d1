"""Conditional search spaces: functions for `hydra.sweeper.custom_search_space`, called as (cfg, trial).

They run after the sweeper has drawn the keys in `hydra.sweeper.params`, so they may read those from
`trial.params` and draw more; each drawn key becomes the job's override `key=value`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from omegaconf import DictConfig

if TYPE_CHECKING:  # optuna is the optional `sweep` extra
    import optuna


def clip_threshold(cfg: DictConfig, trial: optuna.Trial) -> None:
    """`clipping.max` only for trials that clip (`clipping=norm`): the others have no threshold to tune."""
    if trial.params.get("clipping") == "norm":
        trial.suggest_float("clipping.max", 0.5, 5.0, log=True)
