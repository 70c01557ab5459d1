"""Search spaces in Hydra's override syntax become typed Optuna distributions, as in hydra-optuna-sweeper."""

from __future__ import annotations

import optuna
import pytest
from conftest import CONF
from hydra import compose, initialize_config_dir
from hydra.utils import get_method
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tunelab.errors import UserError
from tunelab.search import search_space
from tunelab.training.hydra_hooks.versions import VERSION_BASE


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("key=choice(1, 2)", CategoricalDistribution([1, 2])),
        ("key=choice(true, false)", CategoricalDistribution([True, False])),
        ("key=choice('hello', 'world')", CategoricalDistribution(["hello", "world"])),
        ("key=choice([32], [64, 32])", CategoricalDistribution(["[32]", "[64,32]"])),
        ("key=interval(1, 5)", FloatDistribution(1, 5)),
        ("key=int(interval(1, 5))", IntDistribution(1, 5)),
        ("key=tag(int, interval(1, 5))", IntDistribution(1, 5)),
        ("key=tag(log, interval(1, 5))", FloatDistribution(1, 5, log=True)),
        ("key=tag(log, int(interval(1, 5)))", IntDistribution(1, 5, log=True)),
        # range() lists what Hydra's range lists: from the start up to, not including, the stop
        ("key=range(1, 3)", IntDistribution(1, 2)),
        ("key=range(0, 10, step=2)", IntDistribution(0, 8, step=2)),
        ("key=range(0.5, 5.5, step=1)", FloatDistribution(0.5, 4.5, step=1)),
        ("key=range(5, 0, step=-1)", IntDistribution(1, 5)),
    ],
)
def test_each_search_space_maps_to_its_typed_distribution(override, expected):
    assert search_space.build({}, [override]).distributions == {"key": expected}


def test_shuffle_gives_a_categorical_over_the_ranges_values():
    (dist,) = search_space.build({}, ["key=shuffle(range(1, 4))"]).distributions.values()
    assert isinstance(dist, CategoricalDistribution) and sorted(dist.choices) == [1, 2, 3]


def test_the_command_line_replaces_or_fixes_a_key_of_params():
    params = {"x": "interval(0, 1)", "y": "choice(1, 2)", "z": "3"}
    space = search_space.build(params, ["x=choice(5, 6)", "y=0", "+w=1"])
    assert space.distributions == {"x": CategoricalDistribution([5, 6])}
    assert space.fixed == ["z=3", "y=0", "+w=1"]


def test_choices_go_back_to_jobs_as_they_were_written():
    space = search_space.build({"model.net.hidden_sizes": "choice([64,32], [128])", "name": "choice('a b', c)"}, [])
    assert space.override("model.net.hidden_sizes", "[64,32]") == "model.net.hidden_sizes=[64,32]"
    assert space.override("name", "a b") == "name=a\\ b"  # escaped, so that Hydra reads one value


def test_the_grid_lists_every_value_and_refuses_an_interval():
    space = search_space.build({}, ["x=choice(a, b)", "y=range(0.0, 1.0, step=0.5)"])
    assert space.grid() == {"x": ["a", "b"], "y": [0.0, 0.5]}
    with pytest.raises(UserError, match="z is an interval"):
        search_space.build({}, ["z=interval(0, 1)"]).grid()


def test_an_empty_range_is_refused_naming_the_key():
    with pytest.raises(UserError, match="key: range"):
        search_space.build({}, ["key=range(3, 3)"])


@pytest.mark.parametrize("search", ["etth1_optuna", "cifar10_optuna"])
def test_a_search_draws_clipping_max_only_for_trials_that_clip(search):
    with initialize_config_dir(str(CONF), **VERSION_BASE):
        sweeper = compose("train", [f"hparams_search={search}"], return_hydra_config=True).hydra.sweeper
    assert "clipping" in sweeper.params and "clipping.max" not in sweeper.params
    extend = get_method(sweeper.custom_search_space)
    for clipping in ("norm", "none"):
        trial = optuna.create_study().ask({"clipping": optuna.distributions.CategoricalDistribution([clipping])})
        extend(None, trial)
        assert ("clipping.max" in trial.params) == (clipping == "norm")
        assert 0.5 <= trial.params.get("clipping.max", 1.0) <= 5.0
