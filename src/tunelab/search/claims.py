"""Jobs that must run once, whichever worker of a study gets there: the confirmation phase's jobs.

Every worker of a study reaches the confirmation phase when its own trials are done, often at the same time.
Each job is claimed through a trial of a second study in the same storage, `<study>:claims`, that names the
job: a worker creates a claim (state and name written together, so no worker sees a claim without its job)
for each job nobody holds, then runs the jobs where its claim is the lowest-numbered live one. Trial numbers
are handed out one at a time by the storage, so two workers that claim a job together agree on the winner.
A claim is live while its worker beats for it (leases.py) or once its job ran; a dead worker's claims fail
when their beats stop, which opens their jobs to the next worker.
"""

from __future__ import annotations

import datetime

import optuna
from optuna.trial import FrozenTrial, TrialState

from tunelab.search.leases import Heartbeat

JOB = "tunelab:job"  # system attribute of a claim: the job dir it claims, below the sweep dir
RAN = "tunelab:ran"  # system attribute of a claim whose job ran to its end (FAIL then: the job failed)


def claims_study(study: optuna.Study) -> optuna.Study:
    """The study that holds the claims of `study`'s workers, beside it in the same storage."""
    return optuna.create_study(
        study_name=f"{study.study_name}:claims", storage=study._storage, direction="minimize", load_if_exists=True
    )


def live(trial: FrozenTrial) -> bool:
    """A claim that holds its job: its worker is running it, or it ran."""
    return trial.state in (TrialState.RUNNING, TrialState.COMPLETE) or bool(trial.system_attrs.get(RAN))


def holders(claims: optuna.Study) -> dict[str, int]:
    """Each claimed job's live claim with the lowest number: its trial id."""
    held: dict[str, int] = {}
    for trial in sorted(claims.get_trials(deepcopy=False), key=lambda t: t.number):
        job = trial.system_attrs.get(JOB)
        if job is not None and live(trial):
            held.setdefault(job, trial._trial_id)
    return held


def claim(claims: optuna.Study, jobs: list[str], heartbeat: Heartbeat, limit: int | None = None) -> dict[str, int]:
    """Claim the jobs of `jobs` that no live claim holds, at most `limit` won (None: all); return those this worker
    won, with their claims' ids."""
    storage = claims._storage
    mine: dict[str, int] = {}
    for job in jobs:
        if limit is not None and len(mine) >= limit:
            break
        if job in holders(claims):
            continue
        template = FrozenTrial(
            number=-1,
            state=TrialState.RUNNING,
            value=None,
            datetime_start=datetime.datetime.now(),
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={JOB: job},
            intermediate_values={},
            trial_id=-1,
        )
        trial_id = storage.create_new_trial(claims._study_id, template_trial=template)
        heartbeat.add(trial_id)
        if holders(claims).get(job) == trial_id:
            mine[job] = trial_id
        else:  # another worker claimed it first
            heartbeat.remove(trial_id)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
    return mine


def release(claims: optuna.Study, trial_id: int, heartbeat: Heartbeat, value: float | None, ran: bool) -> None:
    """End a claim: its job ran (to `value`, or failed: None), or it did not (the job is open again)."""
    heartbeat.remove(trial_id)
    storage = claims._storage
    if ran:
        storage.set_trial_system_attr(trial_id, RAN, True)
    if value is not None:
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [value])
    else:
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
