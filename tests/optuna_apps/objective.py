"""A tiny objective for searches under kills, restarts and workers (no torch): x² + y after a nap.

Each job appends `start <job dir> <pid>` and `end <job dir> <pid>` to `<sweep dir>/jobs.log` (one write per
line, so lines of concurrent jobs never mix) and writes `result.json` (its overrides and value) in its dir.
A fault: the environment's OBJECTIVE_DIE_IN=<job dir name prefix> kills the whole worker (SIGKILL, the job runs
in the worker's process) once that job has started, the first time only (`<sweep dir>/died_<prefix>` remembers
it); through the environment, so that the worker's command is the same before and after the kill. Another:
OBJECTIVE_DIE_DRAWING=<trial number> with `hydra.sweeper.custom_search_space=objective.die_while_drawing` kills
the worker once that trial has drawn its parameters, before its job dir is named (once, `died_drawing_<number>`).
OBJECTIVE_NAP=<seconds> replaces `nap` without an override, so that one worker's jobs can be slower than
another's while their confirmation jobs keep the same names. A job whose dir
holds a result.json returns that value without running again, as train.py's jobs do in a restarted sweep.
Like a train.py job it records metrics.json (`val/value`), which tunelab's sweep summary reads; a job with
`x=fail_x` and `seed=fail_seed` diverges (status failed, value NaN).
"""

import json
import os
import signal
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from tunelab.training.hydra_hooks.versions import VERSION_BASE, trusted_targets
from tunelab.training.run.run_files import write_json_atomic


def die_while_drawing(cfg: DictConfig, trial) -> None:
    """The sweeper's hook after a trial's parameters are drawn: the fault OBJECTIVE_DIE_DRAWING (above)."""
    number = os.environ.get("OBJECTIVE_DIE_DRAWING")
    marker = Path(cfg.hydra.sweep.dir) / f"died_drawing_{number}"
    if number == str(trial.number) and not marker.exists():
        marker.touch()
        die(cfg.hydra.sweeper.storage)


def die(storage: str | None) -> None:
    """SIGKILL this worker, between two writes of its journal file: a kill while the heartbeat thread holds the
    file's lock would make the next worker wait out Optuna's 30 s grace on it (the fault injection's random
    kills land anywhere; these faults test what follows a kill, fast)."""
    while storage and "://" not in storage and os.path.lexists(f"{storage}.lock"):  # (the lock is a symlink)
        time.sleep(0.01)
    os.kill(os.getpid(), signal.SIGKILL)


def log(sweep_dir: Path, event: str, job: str) -> None:
    with open(sweep_dir / "jobs.log", "a") as f:
        f.write(f"{event} {job} {os.getpid()}\n")


@hydra.main(config_path=".", config_name="objective", **VERSION_BASE)
def objective(cfg: DictConfig) -> float:
    hydra_cfg = HydraConfig.get()
    job_dir, sweep_dir = Path(hydra_cfg.runtime.output_dir), Path(hydra_cfg.sweep.dir)
    if (job_dir / "result.json").is_file():
        log(sweep_dir, "reuse", job_dir.name)
        return json.loads((job_dir / "result.json").read_text())["value"]
    log(sweep_dir, "start", job_dir.name)
    die_in = os.environ.get("OBJECTIVE_DIE_IN")
    if die_in and job_dir.name.startswith(die_in):
        marker = sweep_dir / f"died_{die_in}"
        if not marker.exists():
            marker.touch()
            die(hydra_cfg.sweeper.storage)
    time.sleep(float(os.environ.get("OBJECTIVE_NAP") or cfg.nap))  # a slower worker, same command line
    diverged = cfg.x == cfg.fail_x and cfg.seed == cfg.fail_seed
    value = float("nan") if diverged else float(cfg.x) ** 2 + float(cfg.y)
    overrides = list(hydra_cfg.overrides.task)
    status = {"status": "failed", "error": "diverged"} if diverged else {"status": "ok"}
    metrics = {**status, "metrics": {"val/value": value}, "optimized_metric": "val/value"}
    # atomic, as train.py writes its metrics.json: a kill mid-write must not leave a truncated result.json, which
    # the retry in this dir would read as the job's result (and fail on)
    write_json_atomic(job_dir / "metrics.json", metrics)
    write_json_atomic(job_dir / "result.json", {"overrides": overrides, "value": value})
    log(sweep_dir, "end", job_dir.name)
    return value


if __name__ == "__main__":
    with trusted_targets():  # its tunelab callback (Hydra 1.4's execution whitelist), as train.py
        objective()
