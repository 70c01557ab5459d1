"""One sampler per sweeper process, from its `_target_` config, seeded so that every sampler keeps its guarantees.

A sampler is built once per process and keeps its state across that process's trials: QMC walks its
sequence, CMA-ES and NSGA-II their generations, GP and TPE their models. What tells processes apart is
the number of the first trial each one creates, which the storage hands out once per study: a new
study's first process (trial 0) seeds with `seed` itself, as plain Optuna would; a resumed search or
another worker on the same study seeds with a hash of (`seed`, that number), except QMC and grid,
whose draws the study indexes. So a search is reproducible for its seed, workers draw different
parameters, a resume does not replay the first run's draws, and neighbouring seeds give unrelated
searches (not one search shifted by a trial). tests/test_optuna_samplers.py holds this for each sampler.
"""

from __future__ import annotations

import functools

import numpy as np
import optuna
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from tunelab.errors import UserError
from tunelab.training.hydra_hooks.versions import allow

# Samplers whose points are one sequence (QMC) or one seeded shuffle of the grid (grid), indexed through the
# study: every process must share the seed itself, and the study keeps them apart.
SHARED_SEED = ("optuna.samplers.QMCSampler", "optuna.samplers.GridSampler")


def stream_seed(seed: int | None, stream: int) -> int | None:
    """The seed of the process whose first trial is number `stream`."""
    if seed is None or stream == 0:
        return seed
    return int(np.random.SeedSequence([int(seed), stream]).generate_state(1)[0])


def check_sampler(node: DictConfig) -> None:
    """Refuse, before the study gets a trial, a sampler that cannot be built."""
    target = str(node.get("_target_"))
    if target.rpartition(".")[2] == "MOTPESampler":
        raise UserError(
            "hydra/sweeper/sampler=motpe: The 'motpe' sampler was removed in Optuna 4.0; "
            "use hydra/sweeper/sampler=tpe, which optimizes several objectives (direction: [...])"
        )
    try:
        make_sampler(node, stream=0, grid={"_": [0]} if is_grid(node) else None)
    except UserError:
        raise
    except Exception as err:  # Hydra wraps the target's own error (unknown class, bad keyword)
        message = str(err).splitlines()[0]
        raise UserError(
            f"hydra.sweeper.sampler ({target}) cannot be built: {message}; pick another sampler with "
            "hydra/sweeper/sampler=<name> rather than changing only its _target_"
        ) from err


def is_grid(node: DictConfig) -> bool:
    return str(node.get("_target_")).rpartition(".")[2] == "GridSampler"


def make_sampler(node: DictConfig, stream: int, grid: dict[str, list] | None = None) -> optuna.samplers.BaseSampler:
    """The sampler of `node` for the process whose first trial is `stream`; a grid sampler over `grid`."""
    settings = OmegaConf.to_container(node, resolve=True)
    if str(settings["_target_"]) not in SHARED_SEED:
        settings["seed"] = stream_seed(settings.get("seed"), stream)
    if grid is not None:
        settings["search_space"] = grid
    if settings.get("mutation", 0) is None:  # NSGA-II's and III's, new in Optuna 5: left out, as Optuna 4 has none
        del settings["mutation"]
    # hydra-optuna-sweeper's own sampler configs too (installed beside tunelab, its names win: config.py)
    trusted = allow("optuna.samplers.*", "hydra_plugins.hydra_optuna_sweeper.*", f"{__name__}.nsgaiii")
    sampler = instantiate(settings, **trusted)
    return sampler() if isinstance(sampler, functools.partial) else sampler  # its grid config is a partial


def nsgaiii(reference_points: list[list[float]] | None = None, **settings: object) -> optuna.samplers.NSGAIIISampler:
    """NSGA-III, its reference points given as the array Optuna takes (a config holds lists)."""
    points = None if reference_points is None else np.asarray(reference_points, dtype=float)
    return optuna.samplers.NSGAIIISampler(reference_points=points, **settings)
