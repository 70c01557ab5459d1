"""Config resolvers: `${run_id:}` and `${digest:text}` for directory names, `${or:a,b}` for a value with a
fallback, `${when:c,v}` for a value that only applies when another key is set, `${run_name:}` and
`${run_dir_name:}` for the loggers (the names themselves are made in tunelab.training.run.naming)."""

from __future__ import annotations

import os
import time

from tunelab.training.hydra_hooks.versions import register_resolver
from tunelab.training.run.naming import digest, run_dir_name, run_name

ENV = "TUNELAB_RUN_ID"


def run_id() -> str:
    """`YYYYmmdd-HHMMSS-<pid>`, made once and inherited by child processes through the environment.

    The process id keeps jobs started in the same second apart. Inheritance matters for launchers
    whose workers resolve `hydra.sweep.dir` themselves (joblib): without it each worker would name
    a sweep root of its own.
    """
    if ENV not in os.environ:
        os.environ[ENV] = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    return os.environ[ENV]


def first_set(value: object, fallback: object) -> object:
    """`value` unless it is null or empty (OmegaConf's oc.select passes a null through)."""
    return fallback if value in (None, "") else value


def when(condition: object, value: object) -> object:
    """`value` if `condition` is set (not null or empty), else null: `clipping.max` counts only with an algorithm."""
    return None if condition in (None, "") else value


def register() -> None:
    register_resolver("run_id", run_id)
    register_resolver("or", first_set)
    register_resolver("when", when)
    register_resolver("digest", digest)
    register_resolver("run_name", run_name)  # the loggers' run names (naming.py)
    register_resolver("run_dir_name", run_dir_name)
