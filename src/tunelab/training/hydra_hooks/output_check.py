"""Create the run's (or sweep's) output folder before Hydra writes into it, and prove it writable.

Without this, a read-only, forbidden or full log folder ends in a traceback from Hydra's own
`mkdir` or config writer; with it, in one line naming the folder.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from tunelab.errors import user_message


class WritableOutput(Callback):
    """Hydra callback: stop with one line, before any work, when the output folder cannot be written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        ensure_writable(output_root(config, "run"))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Also needed by Optuna, which opens its SQLite study there before any job has run.
        ensure_writable(output_root(config, "sweep"))


def output_root(config: DictConfig, mode: str) -> Path:
    """`hydra.run.dir` or `hydra.sweep.dir`; resolving `${hydra:...}` needs HydraConfig, set only later."""
    if not HydraConfig.initialized():
        HydraConfig.instance().set_config(config)
    return Path(config.hydra[mode].dir)


def ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"probe")
            probe.flush()
    except OSError as err:
        err.filename = err.filename or str(folder)
        # Hydra turns a callback's exception into a warning and carries on into its own mkdir,
        # so end the process here, the way a UserError ends train.py.
        print(f"error: cannot write the output folder; {user_message(err) or err}", file=sys.stderr)
        raise SystemExit(1) from err
