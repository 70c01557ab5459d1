"""The plugin class Hydra finds (`hydra/sweeper=optuna`); the search itself is tunelab.search.optuna_search.

Hydra imports every module of hydra_plugins at the start of every app, even one that only prints its
config, so this one stays light: Optuna and the search load when a search is set up.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    """hydra-optuna-sweeper's keys (config.py), passed on to tunelab.search.optuna_search.OptunaSearch."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from tunelab.search.optuna_search import OptunaSearch  # one way: the search never imports this shell

        self.search = OptunaSearch(**self.settings)
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        self.search.sweep(arguments)
