"""What the sweeper promises for every sampler: a seed reproduces its search, neighbouring seeds give
unrelated searches, a resumed search and a second worker on the same study draw new points.

The sweeper runs in this process with a launcher that scores x² + y² itself, so each search takes
milliseconds (GP: a second) and the tests can run every sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from hydra_plugins.tunelab_optuna.config import SAMPLERS
from tunelab.errors import UserError
from tunelab.search.optuna_search import OptunaSearch

# Settings that make each sampler use its own method within a few trials.
SETTINGS = {
    "tpe": {"n_startup_trials": 3},
    "gp": {"n_startup_trials": 3},
    "nsgaii": {"population_size": 4, "mutation_prob": 1.0},  # no child copies a parent: every draw is new
    "nsgaiii": {"population_size": 4, "mutation_prob": 1.0},
    "qmc": {"scramble": True},  # unscrambled, QMC's points do not depend on the seed at all
}
CONTINUOUS = {"x": "interval(-5, 5)", "y": "interval(-5, 5)"}
GRID = {"x": "range(-5, 6)", "y": "range(-5, 6)"}  # 121 points
ALL = [name for name in SAMPLERS if name != "motpe"]
Point = tuple[float, float]


class Sphere:
    """A launcher that scores each job in this process; `meanwhile` runs once, during the first launch."""

    def __init__(self, meanwhile: Callable[[], None] | None = None) -> None:
        self.meanwhile = meanwhile

    def launch(self, job_overrides: list[list[str]], initial_job_idx: int) -> list[JobReturn]:
        if self.meanwhile is not None:
            self.meanwhile, meanwhile = None, self.meanwhile
            meanwhile()
        returns = []
        for overrides in job_overrides:
            values = dict(o.split("=", 1) for o in overrides if not o.lstrip("+").startswith("hydra."))
            score = float(values["x"]) ** 2 + float(values["y"]) ** 2
            returns.append(JobReturn(status=JobStatus.COMPLETED, _return_value=score))
        return returns


def search(
    sweep_dir: Path, sampler: str, seed: int, n_trials: int = 8, meanwhile: Callable[[], None] | None = None
) -> list[Point]:
    """Run (or resume) the search in `sweep_dir`; return the points of all the study's trials, in order."""
    node = OmegaConf.structured(SAMPLERS[sampler](seed=seed, **SETTINGS.get(sampler, {})))
    storage = str(sweep_dir / "optuna.journal")
    params = GRID if sampler == "grid" else CONTINUOUS
    sweeper = OptunaSearch(sampler=node, storage=storage, study_name="s", n_trials=n_trials, n_jobs=1, params=params)
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}})
    sweeper.launcher = Sphere(meanwhile)
    sweeper.search([])
    return points(sweep_dir)


def points(sweep_dir: Path) -> list[Point]:
    backend = optuna.storages.journal.JournalFileBackend(str(sweep_dir / "optuna.journal"))
    study = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(backend))
    return [(t.params["x"], t.params["y"]) for t in study.trials]


@pytest.fixture(autouse=True)
def quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # QMC and GP warn that they are experimental


@pytest.mark.parametrize("sampler", ALL)
def test_a_seed_reproduces_its_search(sampler, tmp_path):
    first = search(tmp_path / "a", sampler, seed=7)
    assert search(tmp_path / "b", sampler, seed=7) == first
    assert len(set(first)) == len(first)


@pytest.mark.parametrize("sampler", ALL)
def test_neighbouring_seeds_are_unrelated_searches(sampler, tmp_path):
    """Not the same search shifted by a trial, as when trial n of seed s drew with seed s + n."""
    seed_0, seed_1 = search(tmp_path / "a", sampler, seed=0), search(tmp_path / "b", sampler, seed=1)
    assert seed_1[:-1] != seed_0[1:] and seed_1 != seed_0
    if sampler != "grid":  # a grid has the same points for every seed, in another order
        assert not set(seed_0) & set(seed_1)


@pytest.mark.parametrize("sampler", ALL)
def test_a_resumed_search_draws_only_new_points(sampler, tmp_path):
    first = search(tmp_path, sampler, seed=3, n_trials=6)
    both = search(tmp_path, sampler, seed=3, n_trials=6)
    assert both[:6] == first and len(both) == 12
    assert not set(both[6:]) & set(first) and len(set(both[6:])) == 6


@pytest.mark.parametrize("sampler", ALL)
def test_two_workers_on_one_study_draw_different_points(sampler, tmp_path):
    """Worker b starts while worker a's first trial runs, with the same seed and storage."""
    search(tmp_path, sampler, seed=5, n_trials=6, meanwhile=lambda: search(tmp_path, sampler, seed=5, n_trials=6))
    study = points(tmp_path)
    assert len(study) == 12 and len(set(study)) == 12


def test_a_key_both_fixed_and_drawn_by_custom_search_space_ends_the_search_without_a_running_trial(tmp_path):
    node = OmegaConf.structured(SAMPLERS["random"](seed=0))
    sweeper = OptunaSearch(
        sampler=node,
        storage=str(tmp_path / "optuna.journal"),
        study_name="s",
        params={"clipping": "choice(norm)"},
        custom_search_space="tunelab.training.search_spaces.clip_threshold",
    )
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    sweeper.launcher = Sphere()
    with pytest.raises(UserError, match=r"^clipping.max: fixed on the command line and searched by custom_search"):
        sweeper.search(["clipping.max=1.0"])
    backend = optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal"))
    (trial,) = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(backend)).trials
    assert trial.state.name == "FAIL" and "clipping.max: fixed" in trial.user_attrs["error"]
