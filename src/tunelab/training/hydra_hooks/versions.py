"""What differs between the Hydra lines tunelab runs on (hydra-core 1.3 with omegaconf 2.3; 1.4 with omegaconf 2.4),
in one place, so that the rest of the code reads the same on both and nothing warns on either.

- `version_base`: 1.3 needs it (without it Hydra assumes 1.1's defaults and warns); 1.4 deprecates it and
  runs its own defaults, the same as 1.3's.
- Resolvers: omegaconf 2.4 deprecates `register_new_resolver` for `register_resolver`; in 2.3 the latter is
  the old API with other semantics, so each line gets its own.
- Execution whitelist: Hydra 1.4 asks every `instantiate()` which config targets may run (without an answer it
  warns, and 1.5 will refuse); 1.3 runs any target and has no such API. `trusted_targets()` is a context in
  which tunelab's own targets, and those a config adds, may run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import hydra
import omegaconf
from omegaconf import OmegaConf

try:
    from hydra.utils import execution_whitelist  # Hydra >= 1.4
except ImportError:
    execution_whitelist = None


def line(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


HYDRA_14 = line(hydra.__version__) >= (1, 4)
# Keyword arguments for @hydra.main and initialize_config_dir: the 1.3 defaults on both lines.
VERSION_BASE: dict[str, str] = {} if HYDRA_14 else {"version_base": "1.3"}

# The targets tunelab's configs name: its own classes, Hydra plugins (sweepers, launchers), Lightning's
# Trainer, callbacks and loggers, torch's optimizers, Optuna's samplers and pruners.
TRUSTED = ("tunelab.*", "hydra_plugins.*", "lightning.*", "torch.optim.*", "optuna.samplers.*", "optuna.pruners.*")


def trusted_targets(extra: Sequence[str] = ()) -> AbstractContextManager:
    """A context in which `instantiate()` runs the TRUSTED targets and `extra` ("mypkg.*", "mypkg.Net")."""
    if execution_whitelist is None:
        return nullcontext()
    return execution_whitelist([*TRUSTED, *extra])


def allow(*targets: str) -> dict[str, list[str]]:
    """`instantiate()`'s keyword naming the targets one call may run (on top of any `trusted_targets()` context):
    Hydra 1.4's `_execution_whitelist_`; nothing on 1.3. For library code that a foreign app may run, such as the
    sweeper's sampler and pruner (hydra-optuna-sweeper 1.4 allows `optuna.samplers.*` the same way)."""
    return {"_execution_whitelist_": list(targets)} if execution_whitelist is not None else {}


def register_resolver(name: str, resolver: Callable[..., Any]) -> None:
    """`${name:...}` in configs calls `resolver`, replacing any earlier one of that name."""
    if line(omegaconf.__version__) >= (2, 4):
        OmegaConf.register_resolver(name, resolver, replace=True)
    else:
        OmegaConf.register_new_resolver(name, resolver, replace=True)
