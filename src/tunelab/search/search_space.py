"""Search spaces in Hydra's override syntax, as Optuna distributions (hydra-optuna-sweeper's mapping).

    choice(a, b, ...)          categorical over the values (numbers and bools stay typed; lists as text)
    range(a, b[, step=s])      integers (floats when any bound or the step is one) from a up to, not
                               including, b: the values Hydra's range() lists, ordered for the sampler
    shuffle(...)               categorical over the values in the order written (not shuffled: a
                               study's space must be the same in every worker and restart)
    interval(lo, hi)           uniform floats; int(interval(lo, hi)) or tag(int, ...) integers
    tag(log, ...)              the same on a log scale

A plain value fixes the key for every trial.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
    ValueType,
)
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from tunelab.errors import UserError


@dataclass
class SearchSpace:
    """The searched keys' distributions, the fixed overrides, and how each categorical choice is written back."""

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)  # overrides as typed: key=value, +key=value, ~key
    value_text: dict[str, list[str]] = field(default_factory=dict)

    def override(self, key: str, value: Any) -> str:
        """`key=value` for a job, the value written as the override that listed it: a choice as typed, a float
        range's value as the decimal it stands for (0.3, not 0.30000000000000004)."""
        distribution = self.distributions.get(key)
        if key in self.value_text and isinstance(distribution, CategoricalDistribution):
            value = self.value_text[key][distribution.choices.index(value)]
        elif key in self.value_text and isinstance(distribution, FloatDistribution):  # a float range
            value = self.value_text[key][round((value - distribution.low) / distribution.step)]
        return f"{key}={value}"

    def grid(self) -> dict[str, list[Any]]:
        """Every value of each key, for the grid sampler (which takes only finite spaces)."""
        return {key: grid_values(key, d) for key, d in self.distributions.items()}


def build(params: dict[str, Any], arguments: list[str]) -> SearchSpace:
    """`hydra.sweeper.params` and the command line (which wins for a key in both) as one search space."""
    parser = OverridesParser.create()
    by_key: dict[str, Override] = {}
    for override in parser.parse_overrides([f"{k}={v}" for k, v in params.items()]) + parser.parse_overrides(arguments):
        by_key.pop(override.key_or_group, None)  # a later override of a key replaces the earlier, in order
        by_key[override.key_or_group] = override
    space = SearchSpace()
    for override in by_key.values():
        if not override.is_sweep_override():
            space.fixed.append(override.input_line)
            continue
        key = override.get_key_element()
        override = in_order(override)
        space.distributions[key] = distribution(override)
        if override.is_choice_sweep():
            space.value_text[key] = list(override.sweep_string_iterator())
        elif isinstance(space.distributions[key], FloatDistribution) and space.distributions[key].step:
            space.value_text[key] = decimal_steps(space.distributions[key])
    return space


def in_order(override: Override) -> Override:
    """A `shuffle(...)` sweep as its values in the order written: Hydra draws a new order in every process,
    and a study's categorical choices must be the same in every worker and every restart."""
    value = override.value()
    if not isinstance(value, ChoiceSweep | RangeSweep) or not value.shuffle:
        return override
    ordered = dataclasses.replace(override, _value=dataclasses.replace(value, shuffle=False))
    if isinstance(value, RangeSweep):  # a categorical over the range's values, as hydra-optuna-sweeper has it
        values = ChoiceSweep(list=list(ordered.sweep_iterator()))
        ordered = dataclasses.replace(override, value_type=ValueType.CHOICE_SWEEP, _value=values)
    return ordered


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override."""
    key, value = override.get_key_element(), override.value()
    if override.is_choice_sweep():
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise UserError(f"{key}: {override.input_line.partition('=')[2]} lists no value")
        step = abs(value.step)
        if any(isinstance(v, float) for v in (value.start, value.stop, value.step)):
            # Hydra's values, its count of them, but bounds in decimal: its last value carries float rounding
            # (range(0, 1, 0.3) ends at 0.8999999999999999), and Optuna would cut a high that is no whole
            # number of steps from low (to 0.6 there).
            start, span = Decimal(repr(float(value.start))), (len(values) - 1) * Decimal(repr(float(step)))
            low, high = (start, start + span) if value.step > 0 else (start - span, start)
            return FloatDistribution(float(low), float(high), step=float(step))
        return IntDistribution(int(min(values)), int(max(values)), step=int(step))
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if "int" in value.tags or (isinstance(value.start, int) and isinstance(value.end, int)):
            return IntDistribution(int(value.start), int(value.end), log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise UserError(f"{key}: {override.input_line.partition('=')[2]} is no search space the Optuna sweeper knows")


def decimal_steps(distribution: FloatDistribution) -> list[str]:
    """A float range's values lowest first, each the decimal low + i * step, as Python prints it."""
    low, step = Decimal(repr(distribution.low)), Decimal(repr(distribution.step))
    count = round((Decimal(repr(distribution.high)) - low) / step) + 1
    return [repr(float(low + i * step)) for i in range(count)]


def grid_values(key: str, distribution: BaseDistribution) -> list[Any]:
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    if isinstance(distribution, IntDistribution | FloatDistribution) and distribution.step is not None:
        n = round((distribution.high - distribution.low) / distribution.step) + 1
        return [distribution.low + i * distribution.step for i in range(n)]
    raise UserError(f"hydra/sweeper/sampler=grid needs a finite space: {key} is an interval; use choice or range")


def suggest(trial: optuna.Trial, space: SearchSpace) -> None:
    """Draw every searched key of `trial` from its distribution."""
    for name, dist in space.distributions.items():
        if isinstance(dist, FloatDistribution):
            trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
        elif isinstance(dist, IntDistribution):
            trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            trial.suggest_categorical(name, dist.choices)
