"""Where an Optuna search keeps its study, and how each of its jobs finds its own trial there.

Shared by the sweeper (tunelab.search), the jobs' pruning callback, the search report and bench/search.py;
kept free of Lightning so that the sweeper plugin, which Hydra imports in every app, starts fast.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.training.run.naming import digest

if TYPE_CHECKING:  # optuna is the optional `sweep` extra: imported only when a search runs
    import optuna

# Environment of each job of an Optuna search: how it reaches its own trial.
TRIAL_ENV = ("TUNELAB_OPTUNA_STORAGE", "TUNELAB_OPTUNA_STUDY", "TUNELAB_OPTUNA_TRIAL")
CONNECT_TRIES = 8  # attempts at opening an RDB whose schema another worker may be creating (about 10 s in all)


def open_storage(storage: str) -> str | optuna.storages.BaseStorage:
    """An RDB URL (sqlite:///..., postgresql://...) as it is; anything else is a journal file path."""
    import optuna

    if "://" in storage:
        return storage
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))


def study_name(name: str | None, sweep_dir: str | Path) -> str:
    """The study a search keeps in its storage: `name`, or for a null name (hydra-optuna-sweeper's default) one
    per sweep dir, named after it, so that the search resumes when started again on that dir instead of
    making a new study each time."""
    if name:
        return str(name)
    path = Path(sweep_dir).resolve()
    return f"{path.name}-{digest(str(path))}"


def connect(storage: str) -> optuna.storages.BaseStorage:
    """The opened storage of `storage` (see open_storage). Workers started together on a new database race to
    create Optuna's schema (SQLite: UNIQUE constraint failed: alembic_version; PostgreSQL: a UniqueViolation
    on its enum types): the one that loses waits a moment and opens the schema the other made."""
    import optuna
    import sqlalchemy.exc

    for attempt in range(CONNECT_TRIES - 1):
        try:
            return optuna.storages.get_storage(open_storage(storage))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError):
            time.sleep((attempt + 1) * 0.25 + random.random() * 0.25)  # jittered: the workers do not meet again
    return optuna.storages.get_storage(open_storage(storage))  # the last try raises what it meets
