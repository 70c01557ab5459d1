"""tunelab's Optuna search: a Hydra sweeper on Optuna's ask/tell API that reads hydra-optuna-sweeper's configs.

Hydra reaches it through the thin plugin class in src/hydra_plugins/tunelab_optuna/optuna_sweeper.py, which
imports this module (and Optuna) only when a search runs.

Written here because no final release of hydra-optuna-sweeper runs on Optuna >= 3 with hydra-core 1.3,
its 1.3.0 aborts a whole search on one failed trial, and no released sweeper lets a job reach its
trial (which pruning needs). Its keys and search spaces mean what they mean there (config.py,
search_space.py); what it adds: failed and pruned trials recorded, resumable studies in a journal file
or RDB, several sweeper processes on one study, and samplers seeded per process (samplers.py).

The loop: ask the study for up to `n_jobs` trials, launch them as ordinary Hydra jobs through the
configured launcher (basic, joblib, submitit), tell each result. A job that fails or returns a
non-finite value is told FAIL with its error, one that its pruner stopped (tunelab.training.callbacks.pruning)
PRUNED; asked trials are never left RUNNING, even when the launcher itself raises. Trials name their
job dirs, so workers sharing a sweep dir never collide.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from tunelab.errors import UserError, report
from tunelab.search import search_space
from tunelab.search.claims import claim, claims_study, release
from tunelab.search.leases import (
    GRID_POINT,
    JOB_DIR,
    RETRY_OF,
    Heartbeat,
    earlier_retry,
    recover_dead_trials,
    take_over,
    take_waiting,
)
from tunelab.search.samplers import check_sampler, is_grid, make_sampler
from tunelab.sweeps.jobs import CONFIRM_PREFIX
from tunelab.training.hydra_hooks.resolvers import run_id
from tunelab.training.optuna_storage import TRIAL_ENV, connect, study_name
from tunelab.training.run.naming import digest
from tunelab.training.run.resume import override_key
from tunelab.training.run.run_files import write_text_atomic

log = logging.getLogger(__name__)

DIRECTIONS = ("minimize", "maximize")


class SearchStopped(UserError):
    """The search ended early, after trials ran (too many failed)."""


class OptunaSearch:
    """hydra-optuna-sweeper's keys (config.py): sampler, direction, storage, study_name, n_trials, n_jobs,
    max_failure_rate, params, custom_search_space."""

    def __init__(
        self,
        sampler: DictConfig,
        direction: str | Sequence[str] = "minimize",
        storage: str | None = None,
        study_name: str | None = None,
        n_trials: int = 20,
        study_trials: int | None = None,
        n_jobs: int = 2,
        max_failure_rate: float = 0.0,
        params: DictConfig | dict | None = None,
        custom_search_space: str | None = None,
        heartbeat_interval: float = 60.0,
        grace_period: float = 120.0,
        confirm: DictConfig | dict | None = None,
        **ignored: Any,  # keys of the basic sweeper's config that Hydra also passes (max_batch_size)
    ) -> None:
        self.sampler, self.direction = sampler, direction
        self.storage, self.study_name = (None if storage is None else str(storage)), study_name
        self.n_trials, self.n_jobs = int(n_trials), max(int(n_jobs), 1)
        self.study_trials = None if study_trials is None else int(study_trials)
        self.max_failure_rate = float(max_failure_rate)
        self.params = {str(k): str(v) for k, v in (params or {}).items()}
        self.custom_search_space = custom_search_space
        self.heartbeat_interval, self.grace_period = float(heartbeat_interval), float(grace_period)
        confirm = confirm or {}
        self.top_k, self.seeds = int(confirm.get("top_k", 0)), list(confirm.get("seeds") or [])
        self.job_dirs: dict[int, str] = {}  # trial number: its job dir below the sweep dir
        self.waiting = False  # whether this worker said it waits for others' trials (waited_for_others)
        self.stream: int | None = None  # the number of this process's first trial (samplers.py)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.callbacks = config, hydra_context.callbacks
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        """Run the search; a bad sweeper setting ends it in one line, before any trial is asked."""
        try:
            self.search(arguments)
        except SearchStopped as err:  # trials ran: the sweep's summary of them first, as after any multirun
            self.callbacks.on_multirun_end(config=self.config)  # (Hydra calls it only when sweep returns)
            report(f"error: {err}")
            sys.exit(1)
        except UserError as err:
            report(f"error: {err}")
            sys.exit(1)

    def search(self, arguments: list[str]) -> None:
        directions = check_directions(self.direction)
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise UserError(f"hydra.sweeper.max_failure_rate must be between 0 and 1; got {self.max_failure_rate}")
        check_sampler(self.sampler)
        check_confirm(self.top_k, self.seeds, directions)
        # What every ask of this search uses: the space, the custom extension, the grid and the opened storage.
        self.space = search_space.build(self.params, arguments)
        self.extend = self.custom_space()
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        if self.storage is None and self.config.get("pruner"):
            log.warning("hydra.sweeper.storage is null: the study lives in this process, so no job can be pruned")

        # No pruner in this study: each job prunes itself through its own (tunelab.training.callbacks.pruning);
        # one here would never be initialised, and TPE would read its brackets all the same.
        self.study_storage = connect(self.storage) if self.storage else optuna.storages.InMemoryStorage()
        name = self.study_name if self.storage is None else study_name(self.study_name, sweep_dir)
        if name != self.study_name:
            log.info(f"hydra.sweeper.study_name is null: this sweep dir's study is '{name}'")
        study = optuna.create_study(study_name=name, storage=self.study_storage, directions=directions,
                                    load_if_exists=True)  # fmt: skip
        log.info(f"Optuna study '{study.study_name}' in {self.storage or 'memory'}: {len(study.trials)} trials so far")
        self.grid = self.space.grid() if is_grid(self.sampler) else None
        # Where workers claim what must run once: grid points, confirmation jobs (claims.py).
        self.claims = claims_study(study) if self.grid is not None or self.top_k else None
        if self.grid is not None:
            log.info(f"Grid sampler: {math.prod(map(len, self.grid.values()))} points")
        failures: list[str] = []
        added = 0
        with Heartbeat(self.study_storage, self.heartbeat_interval) as self.heartbeat:
            while added < self.n_trials:
                recover_dead_trials(study, self.grace_period)
                if self.claims is not None:
                    recover_dead_trials(self.claims, self.grace_period, requeue=False)
                size = min(self.n_jobs, self.n_trials - added)
                if self.study_trials is not None:  # a budget of the whole study: workers end together
                    size = min(size, max(self.study_trials - len(counted(study)), len(queued(study))))
                    if size <= 0 and self.top_k and self.waited_for_others(study):
                        continue  # their results may change the top k: all workers confirm the same final ones
                    if size <= 0:
                        log.info(f"The study holds {self.study_trials} trials (hydra.sweeper.study_trials)")
                        break
                if self.grid is not None:  # counted anew each time: a dead worker's point opens again
                    size = min(size, grid_open(study, self.grid))
                    if not size:
                        log.info("Grid sampler: every point is taken")
                        break
                ran, failed = self.run_batch(study, size)
                failures += failed
                added += ran
                if len(failures) > self.max_failure_rate * max(added, 1):
                    write_results(study, sweep_dir)
                    raise SearchStopped(
                        f"the search stopped: {len(failures)} of {added} trials failed, more than "
                        f"hydra.sweeper.max_failure_rate={self.max_failure_rate}; {failures[-1]}"
                    )
            write_results(study, sweep_dir)
            if self.top_k:
                self.confirm_best(study)

    def run_batch(self, study: optuna.Study, size: int) -> tuple[int, list[str]]:
        """Ask up to `size` trials, launch their jobs together, tell each result; return how many ran and the
        failed trials' errors. On a grid, a trial whose point another worker claimed first does not run."""
        failures: list[str] = []
        trials: list[optuna.Trial] = []
        point_claims: dict[int, int] = {}  # trial number: the id of its grid point's claim
        told: set[int] = set()
        try:
            for _ in range(size):
                trial = self.ask(study)
                if trial is None:
                    break
                if self.grid is not None:
                    claim_id = self.claim_point(study, trial)
                    if claim_id is None:
                        continue
                    point_claims[trial.number] = claim_id
                trials.append(trial)
            if not trials:
                return 0, failures
            jobs = [[*self.overrides(t.params), *self.job_settings(t)] for t in trials]
            returns = self.launcher.launch(jobs, initial_job_idx=trials[0].number)
            for trial, ret in zip(trials, returns, strict=True):
                error = tell(study, trial, ret, len(study.directions))
                told.add(trial.number)
                failures += [f"trial {trial.number}: {error}"] if error else []
        finally:  # an ask, the launcher or a tell raised: no asked trial stays RUNNING, no point stays claimed
            for trial in trials:
                self.heartbeat.remove(trial._trial_id)
                if trial.number not in told:
                    fail(study, trial, "the sweep stopped before this trial's result was told")
                if trial.number in point_claims:
                    value = study._storage.get_trial(trial._trial_id).values
                    ran = trial.number in told
                    release(self.claims, point_claims[trial.number], self.heartbeat, value[0] if value else None, ran)
        return len(trials), failures

    def budget_taken(self, study: optuna.Study) -> bool:
        """Whether the study holds its budget (`study_trials`) of finished and running trials; never without one."""
        return self.study_trials is not None and len(counted(study)) >= self.study_trials

    def waited_for_others(self, study: optuna.Study) -> bool:
        """Wait a little if other workers still run trials of the study (this worker has none running), and say
        whether it did. Each wait is short, so the caller's loop, asking again, notices a dead worker's trial
        (leases.py) and runs its retry here."""
        running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if running:
            if not self.waiting:
                numbers = ", ".join(str(t.number) for t in running)
                log.info(f"The study holds its {self.study_trials} trials; waiting for trials {numbers} of other "
                         "workers before confirming")  # fmt: skip
            self.waiting = True
            time.sleep(min(self.heartbeat_interval, 5.0))
        return bool(running)

    def claim_point(self, study: optuna.Study, trial: optuna.Trial) -> int | None:
        """Claim a grid trial's point (claims.py); when another worker holds it (two asked at once, and the
        grid sampler gave both the same point), fail the trial, saying so, and return None."""
        point = "grid point " + " ".join(self.overrides(trial.params)[len(self.space.fixed) :])
        won = claim(self.claims, [point], self.heartbeat)
        if point in won:
            return won[point]
        self.heartbeat.remove(trial._trial_id)
        fail(study, trial, f"not run: another worker runs this {point}")
        return None

    def confirm_best(self, study: optuna.Study) -> None:
        """Run the study's `top_k` best configurations again, each with every seed of `seeds`, as jobs of this
        sweep: not pruned (no trial), in dirs named by trial, seed and a digest of their overrides, so that a
        resumed sweep finds them done (tunelab.training.run.sweep_resume) and a changed command runs its own.
        Each job runs once, whichever worker claims it first (claims.py). The sweep summary ranks them by their mean."""
        best = best_trials(study, self.top_k)
        if not best:
            log.warning("no trial completed, so no configuration is confirmed on seeds")
            return
        jobs = {}
        for trial in best:
            for seed in self.seeds:
                overrides = [*self.overrides(trial.params, but="seed"), f"seed={seed}"]
                # named by its overrides too: a search started again with another command confirms anew
                jobs[f"{CONFIRM_PREFIX}{trial.number}_seed{seed}_{digest(' '.join(overrides))}"] = overrides
        recover_dead_trials(self.claims, self.grace_period, requeue=False)  # also when no trial ran here
        numbers = ", ".join(str(t.number) for t in best)
        log.info(f"Confirming trials {numbers} on seeds {self.seeds}: {len(jobs)} jobs")
        # n_jobs at a time, so that workers reaching this phase together share its jobs
        run_here = 0
        while mine := claim(self.claims, list(jobs), self.heartbeat, limit=self.n_jobs):
            self.confirm(jobs, mine, first_idx=len(study.trials) + run_here)
            run_here += len(mine)
        log.info(f"Confirmed on seeds: {run_here} of {len(jobs)} jobs ran here")

    def confirm(self, jobs: dict[str, list[str]], mine: dict[str, int], first_idx: int) -> None:
        """Launch the claimed confirmation jobs `mine` together and release each claim with its result."""
        ran: set[str] = set()
        try:
            launched = [[*jobs[job], f"hydra.sweep.subdir={job}"] for job in mine]
            returns = self.launcher.launch(launched, initial_job_idx=first_idx)
            for (job, claim_id), ret in zip(mine.items(), returns, strict=True):
                values = objective_values(ret._return_value, 1) if ret.status == JobStatus.COMPLETED else None
                release(self.claims, claim_id, self.heartbeat, values[0] if values else None, ran=True)
                ran.add(job)
        finally:  # the launcher raised: the jobs it did not finish are open to the next worker
            for job, claim_id in mine.items():
                if job not in ran:
                    release(self.claims, claim_id, self.heartbeat, None, ran=False)

    def overrides(self, params: dict[str, Any], but: str | None = None) -> list[str]:
        """A job's overrides for a trial's `params`: the command line's fixed ones (less the key `but`), then them."""
        fixed = [o for o in self.space.fixed if override_key(o) != but]
        return [*fixed, *(self.space.override(k, v) for k, v in params.items())]

    def custom_space(self) -> Callable[[DictConfig, optuna.Trial], None] | None:
        if not self.custom_search_space:
            return None
        try:
            return get_method(self.custom_search_space)
        except Exception as err:  # Hydra raises ImportError, ValueError or its own for a bad dotted path
            message = str(err).splitlines()[0]
            where = f"hydra.sweeper.custom_search_space: {self.custom_search_space}"
            raise UserError(f"{where} is no function this app can import ({message})") from err

    def ask(self, study: optuna.Study) -> optuna.Trial | None:
        """A new trial with its parameters drawn: from `space`, then from `custom_search_space`. A retry that
        another retry of the same dead trial precedes (two workers queued one each) fails unrun (leases.py); in
        its place comes the next trial, or none (None) when a study budget is full and nothing else is queued."""
        trial = self.next_trial(study)
        while (earlier := earlier_retry(study, trial)) is not None:
            fail(study, trial, f"not run: trial {earlier} retries trial {trial.user_attrs[RETRY_OF]} already")
            if self.budget_taken(study) and not queued(study):
                return None
            trial = self.next_trial(study)
        self.heartbeat.add(trial._trial_id)
        try:
            search_space.suggest(trial, self.space)
            if self.extend is not None:
                self.extend(self.config, trial)
            fixed = {o.partition("=")[0].lstrip("+~") for o in self.space.fixed}
            if overlap := sorted(fixed & {k.lstrip("+~") for k in trial.params}):
                raise UserError(f"{', '.join(overlap)}: fixed on the command line and searched by custom_search_space")
            sweep_dir = Path(self.config.hydra.sweep.dir)
            subdir = take_over(study, trial, sweep_dir, self.overrides(trial.params)) or f"{trial.number}_{run_id()}"
            self.study_storage.set_trial_system_attr(trial._trial_id, JOB_DIR, subdir)
            self.job_dirs[trial.number] = subdir
        except BaseException as err:  # a bad space or custom_search_space: the trial ends, not left RUNNING
            fail(study, trial, f"{type(err).__name__}: {err}")
            raise
        return trial

    def next_trial(self, study: optuna.Study) -> optuna.Trial:
        """The study's next trial for this process: a queued one (a dead worker's retry) first, else a new one."""
        if self.stream is None:
            # This process's first trial: its number, unique in the study, seeds the sampler (samplers.py),
            # which must exist before the trial object does (building one runs the sampler's before_trial).
            storage = self.study_storage
            trial_id = take_waiting(study)  # a dead worker's retry comes first, as study.ask() would take it
            if trial_id is None:
                trial_id = storage.create_new_trial(storage.get_study_id_from_name(study.study_name))
            self.stream = storage.get_trial_number_from_id(trial_id)
            study.sampler = make_sampler(self.sampler, self.stream, self.grid)
            return optuna.Trial(study, trial_id)
        return study.ask()  # a trial queued again (leases.py) comes first

    def job_settings(self, trial: optuna.Trial) -> list[str]:
        """The job's dir (named by its trial number, not the launcher's per-process job number; a retry's is
        the dead trial's), and its way to the trial (pruning) when the study is in a storage the job can open."""
        settings = [f"hydra.sweep.subdir={self.job_dirs[trial.number]}"]
        if self.storage is not None:
            values = (self.storage, trial.study.study_name, trial.number)
            settings += [f"++hydra.job.env_set.{name}={value}" for name, value in zip(TRIAL_ENV, values, strict=True)]
        return settings


def check_directions(direction: str | Sequence[str]) -> list[str]:
    given = [direction] if isinstance(direction, str) else list(direction)
    if not given or any(str(d) not in DIRECTIONS for d in given):
        raise UserError(f"hydra.sweeper.direction must be minimize or maximize, or a list of them; got {direction}")
    return [str(d) for d in given]


def check_confirm(top_k: int, seeds: list[Any], directions: list[str]) -> None:
    where = "hydra.sweeper.confirm"
    if top_k < 0:
        raise UserError(f"{where}.top_k must be 0 (off) or more; got {top_k}")
    if not top_k:
        return
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UserError(f"{where}.seeds must be a list of whole numbers, such as [0, 1, 2]; got {seeds}")
    if len(directions) > 1:
        raise UserError(f"{where}.top_k: confirming needs one objective; this search has {len(directions)}")


def best_trials(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    """The study's k best finished trials, one per parameter set (Optuna may propose a set twice)."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sign = 1 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1
    best: dict[tuple, optuna.trial.FrozenTrial] = {}
    for trial in sorted(done, key=lambda t: sign * t.value):
        best.setdefault(tuple(sorted((k, repr(v)) for k, v in trial.params.items())), trial)
    return list(best.values())[:k]


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials a study budget counts: finished and running (any worker's); not the failed ones, whose retries
    count instead once they run."""
    state = optuna.trial.TrialState
    return study.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED, state.RUNNING))


def queued(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's queued trials (dead workers' retries): run whatever the budget says. The budget let their dead
    trials start, and other workers may have filled it since (three asked at once for a budget of two, one died)."""
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))


def grid_open(study: optuna.Study, grid: dict[str, list[Any]]) -> int:
    """How many trials the grid still needs: its points the grid sampler gave no trial yet, and the retries
    queued for points whose worker died (their dead trial's point counts as given). Counted by the sampler's
    own record, a trial's grid_id, so that a trial that died with part of its point drawn counts once."""
    space = {key: list(values) for key, values in sorted(grid.items())}  # as the grid sampler records it
    found = study.get_trials(deepcopy=False)
    grid_id, search_space = GRID_POINT
    given = {t.system_attrs[grid_id] for t in found  # (the sampler writes search_space first, then grid_id)
             if grid_id in t.system_attrs and t.system_attrs.get(search_space) == space}  # fmt: skip
    waiting = sum(t.state == optuna.trial.TrialState.WAITING for t in found)
    return max(math.prod(map(len, space.values())) - len(given), 0) + waiting


def tell(study: optuna.Study, trial: optuna.Trial, ret: JobReturn, n_objectives: int) -> str | None:
    """Tell the study how the job ended; return the error of a trial whose job failed (max_failure_rate counts it)."""
    if ret.status != JobStatus.COMPLETED:
        error = ret._return_value  # the job's exception (return_value would raise it)
        return fail(study, trial, f"{type(error).__name__}: {error}")
    summary = job_summary(ret)
    if summary.get("status") == "pruned":  # the job stopped itself after its trial's pruner said so
        finish(study, trial, state=optuna.trial.TrialState.PRUNED)
        return None
    values = objective_values(ret.return_value, n_objectives)
    if values is not None:
        finish(study, trial, values=values)
        return None
    if summary.get("status") == "failed":  # a tunelab job that failed (it returns NaN): a failure of the search
        return fail(study, trial, summary.get("error") or "the job failed")
    # A value the study cannot take (NaN, another count): the trial fails, the search goes on whatever
    # max_failure_rate says, which counts jobs that failed (hydra-optuna-sweeper treats it so too).
    wanted = "a finite number" if n_objectives == 1 else f"a list of {n_objectives} finite numbers"
    fail(study, trial, f"the job returned {ret.return_value!r}, not {wanted}")
    return None


def objective_values(value: Any, n_objectives: int) -> list[float] | None:
    """The job's return value as one float per objective, or None when it is not that."""
    values = list(value) if isinstance(value, list | tuple) or OmegaConf.is_list(value) else [value]
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return floats if len(floats) == n_objectives and all(math.isfinite(f) for f in floats) else None


def job_summary(ret: JobReturn) -> dict[str, Any]:
    """What a tunelab job recorded in its metrics.json: status ok / pruned / failed, and the error."""
    try:
        return json.loads((Path(ret.hydra_cfg.hydra.runtime.output_dir) / "metrics.json").read_text())
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def fail(study: optuna.Study, trial: optuna.Trial, error: str) -> str:
    trial.set_user_attr("error", error)
    finish(study, trial, state=optuna.trial.TrialState.FAIL)
    log.warning(f"trial {trial.number} failed: {error}")
    return error


def finish(study: optuna.Study, trial: optuna.Trial, **result: Any) -> None:
    try:
        study.tell(trial, **result)
    except RuntimeError as err:  # the grid sampler calls study.stop() once every point is done: the result is stored
        if "Study.stop" not in str(err):
            raise


def write_results(study: optuna.Study, sweep_dir: Path) -> None:
    """optimization_results.yaml as hydra-optuna-sweeper writes it: the best trial, or the Pareto front."""
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        log.warning("no trial completed, so no optimization_results.yaml")
        return
    if len(study.directions) == 1:
        best = study.best_trial
        results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
        log.info(f"Best parameters: {best.params}, value {best.value}")
    else:
        results = {"name": "optuna", "solutions": [{"params": t.params, "values": t.values} for t in study.best_trials]}
        log.info(f"Pareto front: {len(results['solutions'])} trials")
    write_text_atomic(sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(OmegaConf.create(results)))
