"""A Hydra sweeper on Optuna's ask/tell API: failed and pruned trials, resumable studies, shared storage.

Written here because no final release of hydra-optuna-sweeper runs on Optuna >= 3 with hydra-core 1.3,
its 1.3.0 aborts a whole search on one failed trial, and no released sweeper lets a job reach its
trial (which pruning needs). The loop: ask the study for up to `n_jobs` trials, launch them as
ordinary Hydra jobs through the configured launcher (basic, joblib, submitit), tell each result.
A job that fails or returns a non-finite value is told FAIL with its error, one that its pruner
stopped (tunelab.training.callbacks.pruning) PRUNED; asked trials are never left RUNNING, even when the
launcher itself raises. Several sweeper processes may share one study (journal file or RDB URL):
each asks its own trials, in job dirs named by trial number.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from tunelab.errors import UserError, report
from tunelab.training.callbacks.pruning import TRIAL_ENV, make_pruner, open_storage
from tunelab.training.hydra_hooks.resolvers import run_id

log = logging.getLogger(__name__)

SAMPLERS = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}


class OptunaSweeper(Sweeper):
    """`hydra.sweeper.params` maps keys to search spaces in Hydra's override syntax:
    `choice(a, b)` and `range(1, 5)` are categorical, `interval(lo, hi)` uniform, `tag(log, interval(..))`
    log-uniform, `tag(int, interval(..))` integers; a plain value is fixed for every trial.
    """

    def __init__(
        self,
        study_name: str,
        storage: str,
        direction: str = "minimize",
        n_trials: int = 20,
        n_jobs: int = 1,
        sampler: DictConfig | dict | None = None,
        params: DictConfig | dict | None = None,
        **ignored: Any,  # keys of the basic sweeper's config that Hydra also passes (max_batch_size)
    ) -> None:
        self.study_name, self.storage, self.direction = study_name, str(storage), direction
        self.n_trials, self.n_jobs = int(n_trials), max(int(n_jobs), 1)
        self.sampler = dict(sampler or {})
        self.params = {str(k): str(v) for k, v in (params or {}).items()}

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        """Run the search; a bad sweeper setting ends it in one line, before any trial is asked."""
        try:
            self.search(arguments)
        except UserError as err:
            report(f"error: {err}")
            sys.exit(1)

    def search(self, arguments: list[str]) -> None:
        make_sampler(self.sampler, offset=0)  # refuses an unknown sampler before the study gets a trial
        parser = OverridesParser.create()
        fixed = parser.parse_overrides(arguments)
        for override in fixed:
            if override.is_sweep_override():
                raise UserError(
                    f"'{override.input_line}' sweeps on the command line of an Optuna search; "
                    "put searched keys in hydra.sweeper.params"
                )
        space, constant = search_space(parser.parse_overrides([f"{k}={v}" for k, v in self.params.items()]))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        # The pruner lives in the study object, not in the storage: jobs load it from the same `pruner`
        # group; here it matters to samplers that follow it (TPE samples within a Hyperband bracket).
        study = optuna.create_study(study_name=self.study_name, storage=open_storage(self.storage),
                                    direction=self.direction, pruner=make_pruner(self.config.get("pruner")),
                                    load_if_exists=True)  # fmt: skip
        log.info(f"Optuna study '{self.study_name}' in {self.storage}: {len(study.trials)} trials so far")
        base = [o.input_line for o in fixed] + constant
        added = 0
        while added < self.n_trials:
            trials = [self._ask(study, space) for _ in range(min(self.n_jobs, self.n_trials - added))]
            jobs = [[*base, *(f"{k}={v}" for k, v in t.params.items()), *self._job_settings(t)] for t in trials]
            told: set[int] = set()
            try:
                returns = self.launcher.launch(jobs, initial_job_idx=trials[0].number)
                for trial, ret in zip(trials, returns, strict=True):
                    tell(study, trial, ret)
                    told.add(trial.number)
            finally:  # the launcher or a tell raised: no asked trial stays RUNNING
                for trial in trials:
                    if trial.number not in told:
                        fail(study, trial, "the sweep stopped before this trial's result was told")
            added += len(trials)

    def _ask(self, study: optuna.Study, space: dict[str, optuna.distributions.BaseDistribution]) -> optuna.Trial:
        """A new trial, its parameters drawn by a sampler seeded with seed + the trial's number.

        Trial numbers are unique in a study, so workers sharing it draw different parameters, a resumed
        search does not replay the first one's proposals, and trial n gets the same draw on a rerun
        with the same history.
        """
        trial = study.ask()
        study.sampler = make_sampler(self.sampler, offset=trial.number)
        for name, distribution in space.items():
            suggest(trial, name, distribution)
        return trial

    def _job_settings(self, trial: optuna.Trial) -> list[str]:
        """The job's dir named by its trial number (the launcher's job numbers are per process), and its
        way to the trial (pruning)."""
        values = (self.storage, self.study_name, trial.number)
        env = [f"++hydra.job.env_set.{name}={value}" for name, value in zip(TRIAL_ENV, values, strict=True)]
        return [f"hydra.sweep.subdir={trial.number}_{run_id()}", *env]


def search_space(overrides: list[Override]) -> tuple[dict[str, optuna.distributions.BaseDistribution], list[str]]:
    """Optuna distributions of the swept keys, and the fixed `key=value` overrides."""
    space, constant = {}, []
    for override in overrides:
        key, value = override.get_key_element(), override.value()
        if isinstance(value, IntervalSweep):
            if "int" in value.tags:
                space[key] = optuna.distributions.IntDistribution(
                    int(value.start), int(value.end), log="log" in value.tags
                )
            else:
                space[key] = optuna.distributions.FloatDistribution(value.start, value.end, log="log" in value.tags)
        elif override.is_sweep_override():  # choice / range: categorical over the override strings
            space[key] = optuna.distributions.CategoricalDistribution(list(override.sweep_string_iterator()))
        else:
            constant.append(override.input_line)
    return space, constant


def make_sampler(settings: dict, offset: int) -> optuna.samplers.BaseSampler:
    name = str(settings.get("name", "tpe"))
    if name not in SAMPLERS:
        raise UserError(f"hydra.sweeper.sampler.name must be one of {', '.join(SAMPLERS)}; got '{name}'")
    seed = settings.get("seed")
    return SAMPLERS[name](seed=None if seed is None else int(seed) + offset)


def suggest(trial: optuna.Trial, name: str, distribution: optuna.distributions.BaseDistribution) -> None:
    if isinstance(distribution, optuna.distributions.FloatDistribution):
        trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log)
    elif isinstance(distribution, optuna.distributions.IntDistribution):
        trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log)
    else:
        trial.suggest_categorical(name, distribution.choices)


def tell(study: optuna.Study, trial: optuna.Trial, ret: JobReturn) -> None:
    if ret.status != JobStatus.COMPLETED:
        fail(study, trial, repr(ret._return_value))  # return_value re-raises a failed job's exception
        return
    summary = job_summary(ret)
    if summary.get("status") == "pruned":  # the job stopped itself after its trial's pruner said so
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return
    value = ret.return_value
    if value is None or not math.isfinite(float(value)):
        fail(study, trial, summary.get("error") or f"the job returned {value}")
        return
    study.tell(trial, float(value))


def job_summary(ret: JobReturn) -> dict[str, Any]:
    """What a tunelab job recorded in its metrics.json: status ok / pruned / failed, and the error."""
    try:
        return json.loads((Path(ret.hydra_cfg.hydra.runtime.output_dir) / "metrics.json").read_text())
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def fail(study: optuna.Study, trial: optuna.Trial, error: str) -> None:
    trial.set_user_attr("error", error)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    log.warning(f"trial {trial.number} failed: {error}")
