"""A tiny objective for searches under kills, restarts and workers (no torch): x² + y after a nap.

Each job appends `start <job dir> <pid>` and `end <job dir> <pid>` to `<sweep dir>/jobs.log` (one write per
line, so lines of concurrent jobs never mix) and writes `result.json` (its overrides and value) in its dir.
A fault: `die_in=<job dir name prefix>` kills the whole worker (SIGKILL, the job runs in the worker's process)
once that job has started, the first time only (`<sweep dir>/died_<prefix>` remembers it).
"""

import json
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


def log(sweep_dir: Path, event: str, job: str) -> None:
    with open(sweep_dir / "jobs.log", "a") as f:
        f.write(f"{event} {job} {os.getpid()}\n")


@hydra.main(version_base=None, config_path=".", config_name="objective")
def objective(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    job_dir, sweep_dir = Path(hydra_cfg.runtime.output_dir), Path(hydra_cfg.sweep.dir)
    log(sweep_dir, "start", job_dir.name)
    if cfg.die_in and job_dir.name.startswith(str(cfg.die_in)):
        marker = sweep_dir / f"died_{cfg.die_in}"
        if not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(float(cfg.nap))
    value = float(cfg.x) ** 2 + float(cfg.y)
    overrides = list(hydra_cfg.overrides.task)
    (job_dir / "result.json").write_text(json.dumps({"overrides": overrides, "value": value}))
    log(sweep_dir, "end", job_dir.name)
    return value


if __name__ == "__main__":
    objective()
