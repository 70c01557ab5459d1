"""Jobs of one sweep that run at once on one machine share its cores, instead of each taking all of them.

Torch gives every process as many threads as the machine has cores, so two workers of one study on one
machine (or two submitit_local jobs) oversubscribe it: each trial runs 1.8x to 3.5x slower on 2 cores
(NOTES.md). Each such job registers in `<sweep dir>/.threads/` (one file per host and process), counts
the live jobs of its host there, and sets torch's threads to its share of the cores; it looks again at
every epoch, so a job that started alone gives cores back when others join, and takes them again when
they end. Files of processes that died are ignored and removed. A job alone keeps every core.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)


def machine_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class ThreadShare(Callback):
    """Register this job in `registry`; keep torch's threads at the cores divided by the live jobs of this host."""

    def __init__(self, registry: Path) -> None:
        self.registry = registry
        self.host = socket.gethostname()
        self.entry = registry / f"{self.host}_{os.getpid()}"

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.registry.mkdir(parents=True, exist_ok=True)
        self.entry.touch()
        self.apply()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.apply()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.entry.unlink(missing_ok=True)

    def apply(self) -> None:
        jobs = self.live_jobs()
        threads = max(1, machine_cores() // jobs)
        if threads != torch.get_num_threads():
            log.info(f"torch threads: {threads} ({machine_cores()} cores, {jobs} jobs of this sweep on {self.host})")
            torch.set_num_threads(threads)

    def live_jobs(self) -> int:
        """This host's registered jobs whose process still runs (itself included)."""
        live = 0
        for entry in self.registry.glob(f"{self.host}_*"):
            pid = entry.name.rpartition("_")[2]
            if pid.isdigit() and alive(int(pid)):
                live += 1
            else:
                entry.unlink(missing_ok=True)  # a job killed before its teardown
        return max(live, 1)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
