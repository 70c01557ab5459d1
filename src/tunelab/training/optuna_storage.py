"""Where an Optuna search keeps its study, and how each of its jobs finds its own trial there.

Shared by the sweeper (tunelab.search), the jobs' pruning callback and bench/search.py;
kept free of Lightning so that the sweeper plugin, which Hydra imports in every app, starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # optuna is the optional `sweep` extra: imported only when a search runs
    import optuna

# Environment of each job of an Optuna search: how it reaches its own trial.
TRIAL_ENV = ("TUNELAB_OPTUNA_STORAGE", "TUNELAB_OPTUNA_STUDY", "TUNELAB_OPTUNA_TRIAL")


def open_storage(storage: str) -> str | optuna.storages.BaseStorage:
    """An RDB URL (sqlite:///..., postgresql://...) as it is; anything else is a journal file path."""
    import optuna

    if "://" in storage:
        return storage
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
