"""The sweeper's and the samplers' configs in Hydra's ConfigStore, under hydra-optuna-sweeper's names.

Any Hydra app with tunelab installed picks them as it would pick that plugin's: `hydra/sweeper=optuna`,
`hydra/sweeper/sampler=tpe` (random, cmaes, nsgaii, nsgaiii, qmc, grid, gp; motpe only to say it is gone),
with the keys of hydra-optuna-sweeper 1.4's configs. Sampler keys default to Optuna's own defaults; `seed` is
the search's seed (see tunelab/search/samplers.py).

Installed beside hydra-optuna-sweeper itself, both load and nothing clashes: `hydra/sweeper=optuna` and the
sampler names are then that plugin's (tunelab's sweeper takes its sampler configs too), and tunelab's sweeper
is `hydra/sweeper=tunelab_optuna`, the name it always has (conf/hydra/sweeper/tunelab.yaml builds on it).
Kept free of heavy imports: Hydra imports every plugin module at the start of every app.
"""

import importlib.util
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class SamplerConfig:
    _target_: str = MISSING
    seed: int | None = None  # reproducible search; each worker and resume draws its own stream of it


@dataclass
class TPESamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.TPESampler"
    n_startup_trials: int = 10  # random trials before TPE models the results
    n_ei_candidates: int = 24
    multivariate: bool | None = None  # model the parameters jointly
    group: bool = False
    constant_liar: bool = True  # trials still running count as bad: parallel workers spread out
    consider_prior: bool | None = None
    prior_weight: float | None = None
    consider_magic_clip: bool | None = None
    consider_endpoints: bool | None = None
    warn_independent_sampling: bool | None = None
    constraints_func: Any = None  # dotted path to a function (trial) -> constraint values, with its `_target_`


@dataclass
class RandomSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.RandomSampler"


@dataclass
class CmaEsSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.CmaEsSampler"
    x0: dict[str, Any] | None = None
    sigma0: float | None = None
    n_startup_trials: int = 1
    independent_sampler: Any = None  # for categorical parameters: a `_target_` sampler, or random
    warn_independent_sampling: bool = True
    consider_pruned_trials: bool = False
    restart_strategy: str | None = None  # ipop | bipop
    popsize: int | None = None
    inc_popsize: int = -1
    use_separable_cma: bool = False
    with_margin: bool = False
    lr_adapt: bool = False


@dataclass
class NSGAIISamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.NSGAIISampler"
    population_size: int = 50
    mutation_prob: float | None = None
    mutation: Any = None  # Optuna >= 5: a `_target_` mutation; left out when null (Optuna 4 has no such key)
    crossover: Any = None  # a `_target_` crossover (optuna.samplers.nsgaii.UniformCrossover, ...); null: uniform
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    constraints_func: Any = None


@dataclass
class NSGAIIISamplerConfig(NSGAIISamplerConfig):
    _target_: str = "tunelab.search.samplers.nsgaiii"  # NSGAIIISampler, its reference points as an array
    reference_points: list[list[float]] | None = None  # null: spread over the objectives by dividing_parameter
    dividing_parameter: int = 3


@dataclass
class QMCSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.QMCSampler"
    qmc_type: str = "sobol"  # sobol | halton
    scramble: bool = False
    independent_sampler: Any = None
    warn_asynchronous_seeding: bool = True
    warn_independent_sampling: bool = True


@dataclass
class GridSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.GridSampler"  # every point of `params`; n_trials at most the grid's size


@dataclass
class GPSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.GPSampler"
    independent_sampler: Any = None
    n_startup_trials: int = 10
    deterministic_objective: bool = False
    warn_independent_sampling: bool = True


@dataclass
class MOTPESamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.MOTPESampler"  # removed in Optuna 4: the sweeper refuses it in one line


@dataclass
class ConfirmConfig:
    """tunelab's own: the search's best configurations run again on several seeds (optuna_sweeper.py)."""

    top_k: int = 0  # after the search, the k best configurations run again on each seed; 0: off
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # the app's `seed` key, one job each


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.tunelab_optuna.optuna_sweeper.OptunaSweeper"
    _recursive_: bool = False  # the sampler reaches the sweeper as a config: it seeds one per worker
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    sampler: Any = MISSING  # hydra/sweeper/sampler=<name>, or any `_target_` with its keyword arguments
    direction: Any = "minimize"  # minimize | maximize, or a list of them: one per objective
    storage: str | None = None  # null: in memory; a journal file path or an RDB URL (sqlite:///x.db)
    study_name: str | None = None  # null: Optuna names it
    n_trials: int = 20  # trials this invocation adds (a resume or another worker adds its own)
    study_trials: int | None = None  # tunelab's own: no trial asked once this many ran or run (null: no cap)
    n_jobs: int = 2  # trials asked and launched together
    max_failure_rate: float = 0.0  # the search stops once more than this share of its trials failed
    params: dict[str, Any] | None = None  # key: search space (choice, range, interval, tag(log, ...)) or value
    custom_search_space: str | None = None  # dotted path to a function (cfg, trial) adding parameters
    # tunelab's own (tunelab/search/leases.py): a trial whose worker died is failed and run again by a live worker
    heartbeat_interval: float = 60.0  # seconds between the beats a worker writes for its running trials
    grace_period: float = 120.0  # seconds without a beat after which a running trial counts as dead
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)  # winners re-run on seeds; off by default


SAMPLERS = {
    "tpe": TPESamplerConfig,
    "random": RandomSamplerConfig,
    "cmaes": CmaEsSamplerConfig,
    "nsgaii": NSGAIISamplerConfig,
    "nsgaiii": NSGAIIISamplerConfig,
    "qmc": QMCSamplerConfig,
    "grid": GridSamplerConfig,
    "gp": GPSamplerConfig,
    "motpe": MOTPESamplerConfig,
}

OFFICIAL = importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None  # hydra-optuna-sweeper

store = ConfigStore.instance()
store.store(group="hydra/sweeper", name="tunelab_optuna", node=OptunaSweeperConf, provider="tunelab_optuna")
if not OFFICIAL:  # the names are that plugin's: tunelab's stand in for them only where it is not installed
    store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="tunelab_optuna")
    for name, node in SAMPLERS.items():
        store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="tunelab_optuna")
