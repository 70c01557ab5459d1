"""Hydra callback: after a multirun, the sweep's tables, best.yaml and search report (tunelab.sweeps.summary)."""

from __future__ import annotations

import fcntl
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from tunelab.sweeps.summary import summarize
from tunelab.training.hydra_hooks.output_check import output_root


class SweepSummary(Callback):
    """At the end of a multirun, write `sweep_summary.csv`, `sweep_groups.csv`, `sweep_summary.md` and
    `best.yaml` in the sweep root (tunelab.sweeps.summary.summarize says what each holds).

    With several sweep processes on one sweep dir (Optuna workers), each rewrites the files when it
    ends, one at a time, the last with every job.
    """

    def __init__(self, report: bool = True) -> None:
        self.report = report  # end sweep_summary.md with the search report (tunelab.sweeps.report)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = output_root(config, "sweep")
        if not root.is_dir():  # the multirun stopped before it made its dir (Hydra 1.4 ends it with this call too)
            return
        # Workers sharing the sweep dir take turns, so the one that reads the job dirs last also writes last.
        with open(root / ".sweep_summary.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            summarize(config, root, self.report)
