"""Trials of dead workers: every sweeper process beats for its running trials; any worker of the study
fails a trial whose beats stopped and queues it again.

A worker that is killed (SIGKILL, a preempted or timed-out SLURM job) leaves its trial RUNNING forever:
Optuna 5's JournalStorage has no heartbeat, and RDBStorage's is driven by `Study.optimize`, which an
ask/tell sweeper does not run. So one mechanism serves both: a thread of each sweeper process writes
the time into the system attributes of its running trials every `heartbeat_interval` seconds; before
asking, every worker looks for RUNNING trials whose last beat is older than `grace_period`, tells them
FAIL with the reason, and enqueues a retry with the same parameters (when it had drawn any), which the
next ask of any worker takes. The retry runs in the dead trial's job dir (its job continues from that
dir's last.ckpt, see tunelab.training.run.sweep_resume) and starts with the dead trial's intermediate
values, so a pruner sees one history.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState, create_trial

log = logging.getLogger(__name__)

BEAT = "tunelab:heartbeat"  # system attribute: unix time of the trial's last beat
JOB_DIR = "tunelab:job_dir"  # system attribute: the trial's job dir, below the sweep dir
RETRY_OF = "retry_of"  # user attribute of a retry: the number of the trial it repeats
DEAD = "its worker stopped"  # how the error of a trial failed for its missing heartbeat begins
GRID_POINT = ("grid_id", "search_space")  # Optuna's GridSampler's system attributes: a trial's point of the grid


class Heartbeat:
    """A thread that beats for the trials added to it, until they are removed or the heartbeat stops."""

    def __init__(self, storage: optuna.storages.BaseStorage, interval: float) -> None:
        self.storage, self.interval = storage, interval
        self.trial_ids: set[int] = set()
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="optuna-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def add(self, trial_id: int) -> None:
        beat(self.storage, trial_id)
        with self.lock:
            self.trial_ids.add(trial_id)

    def remove(self, trial_id: int) -> None:
        with self.lock:
            self.trial_ids.discard(trial_id)

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                trial_ids = list(self.trial_ids)
            for trial_id in trial_ids:
                try:
                    beat(self.storage, trial_id)
                except Exception as err:  # told meanwhile, or the storage hiccuped: the next beat tries again
                    log.debug(f"heartbeat of trial id {trial_id} skipped: {err}")


def beat(storage: optuna.storages.BaseStorage, trial_id: int) -> None:
    storage.set_trial_system_attr(trial_id, BEAT, time.time())


def recover_dead_trials(study: optuna.Study, grace_period: float, requeue: bool = True) -> None:
    """Fail the study's RUNNING trials whose beats stopped `grace_period` seconds ago; queue each again (unless
    not `requeue`: a claim, claims.py, is not retried but leaves its job open).

    Failing a trial is the step only one worker wins; queueing its retry is the next one. A worker killed
    between the two leaves a dead trial without a retry: any worker queues it once the trial has been failed
    for `grace_period` seconds. Two that do so at once queue two retries, of which only the first runs
    (`earlier_retry`)."""
    storage, now = study._storage, time.time()  # Optuna's own callbacks reach the storage the same way
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        if trial.state != TrialState.RUNNING:
            continue
        last = trial.system_attrs.get(BEAT) or trial.datetime_start.timestamp()
        if now - last <= grace_period:
            continue
        reason = f"{DEAD}: no heartbeat for {now - last:.0f} s (grace_period {grace_period:g} s)"
        try:
            storage.set_trial_user_attr(trial._trial_id, "error", reason)
            if not storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                continue
        except RuntimeError:  # another worker told it first (UpdateFinishedTrialError is a RuntimeError)
            continue
        if requeue:
            queue_retry(study, trial, reason)
    if not requeue:
        return
    retried = {t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs}
    for trial in trials:
        dead = trial.state == TrialState.FAIL and str(trial.user_attrs.get("error", "")).startswith(DEAD)
        orphan = dead and trial.number not in retried and now - trial.datetime_complete.timestamp() > grace_period
        if orphan and (retry_params(trial) or grid_point(trial)):
            queue_retry(study, trial, f"{DEAD}, and so did the worker that failed it")


def queue_retry(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Queue a retry of the dead `trial`: with its parameters, or its grid point; none when it drew neither."""
    params = retry_params(trial)
    if params:
        log.warning(f"trial {trial.number} failed: {reason}; queued again with the same parameters")
        study.enqueue_trial(params, user_attrs={RETRY_OF: trial.number})
    elif point := grid_point(trial):
        # Died before its job, but the grid sampler gave it a point, which that sampler now counts as
        # visited: only a retry with the same point (its grid_id, which the sampler reads) runs it.
        log.warning(f"trial {trial.number} failed: {reason}, before its job started; its grid point is queued")
        study.add_trial(create_trial(state=TrialState.WAITING, user_attrs={RETRY_OF: trial.number}, system_attrs=point))
    else:  # its worker died while drawing them: no job ran, nothing to retry
        log.warning(f"trial {trial.number} failed: {reason}, before its parameters were drawn")


def grid_point(trial: FrozenTrial) -> dict | None:
    """The grid sampler's record of the point it gave `trial` (GRID_POINT), or None: not given, or not whole."""
    if not all(key in trial.system_attrs for key in GRID_POINT):
        return None
    return {key: trial.system_attrs[key] for key in GRID_POINT}


def earlier_retry(study: optuna.Study, trial: optuna.Trial) -> int | None:
    """The number of another retry of the dead trial that `trial` retries, queued before it (two workers queued
    one each): that one runs, this one does not. None when `trial` is no retry, or the first."""
    number = trial.user_attrs.get(RETRY_OF)
    if number is None:
        return None
    earlier = [t.number for t in study.get_trials(deepcopy=False) if t.user_attrs.get(RETRY_OF) == number]
    return min(earlier) if min(earlier) < trial.number else None


def retry_params(trial: FrozenTrial) -> dict | None:
    """The parameters a dead trial's retry runs with: a retry's own, as it was queued with them (it may have died
    before drawing them); a trial's once all are drawn (its job dir is named after that); else None."""
    if RETRY_OF in trial.user_attrs:
        return trial.system_attrs.get("fixed_params") or trial.params  # Optuna's record of an enqueued trial's
    return trial.params if JOB_DIR in trial.system_attrs else None


def take_waiting(study: optuna.Study) -> int | None:
    """The id of a queued trial (a retry) that this process now runs, marked RUNNING as `Study.ask` does, or None.

    For a process's first trial, which is built before its sampler exists (samplers.py) and so cannot come
    from `Study.ask`: without this, a restarted worker would draw a fresh trial and leave the retry WAITING.
    Taking a trial is atomic in both storages: only one worker's WAITING -> RUNNING succeeds."""
    storage = study._storage
    for trial in storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.WAITING,)):
        if storage.set_trial_state_values(trial._trial_id, state=TrialState.RUNNING):
            return trial._trial_id
    return None


def take_over(study: optuna.Study, trial: optuna.Trial, sweep_dir: Path, overrides: list[str]) -> str | None:
    """For a retry: the dead trial's job dir, with its intermediate values copied into the retry; None when the
    trial is no retry, or when the dead trial's job ran other overrides (the command changed in between:
    that dir's checkpoint and records belong to another job, so the retry starts anew in a dir of its own)."""
    number = trial.user_attrs.get(RETRY_OF)
    if number is None:
        return None
    trials = study.get_trials(deepcopy=False)
    dead = trials[number]
    while JOB_DIR not in dead.system_attrs and RETRY_OF in dead.user_attrs:  # a retry that died before its job
        dead = trials[dead.user_attrs[RETRY_OF]]  # started: the job it was to continue is an earlier one's
    job_dir = dead.system_attrs.get(JOB_DIR)
    if job_dir is None:
        return None
    recorded = sweep_dir / str(job_dir) / ".hydra" / "overrides.yaml"
    if recorded.is_file() and yaml.safe_load(recorded.read_text()) != overrides:
        log.warning(f"trial {trial.number} retries trial {number}, whose job ran other overrides: it starts anew")
        return None
    for step, value in dead.intermediate_values.items():
        study._storage.set_trial_intermediate_value(trial._trial_id, step, value)
    return job_dir
