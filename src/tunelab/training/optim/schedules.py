"""Learning-rate schedules as multipliers of the optimizer's lr, with an optional linear warmup.

Every schedule except `plateau` is a pure function `factor(t, total, **params)` of the step (or epoch)
`t` after warmup and the number `total` of steps it spans. One `LambdaLR` applies warmup then the
schedule, so any schedule can take a warmup without torch's SequentialLR (whose milestone hand-over
repeats or skips a step) and each shape can be checked number by number in the tests.
`plateau` reacts to a monitored metric, so it is torch's ReduceLROnPlateau, preceded when asked by a
LinearLR warmup; both scale the current lr, so they compose.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LinearLR, LRScheduler, ReduceLROnPlateau

from tunelab.errors import UserError


def constant(t: int, total: int) -> float:
    return 1.0


def step(t: int, total: int, step_size: int = 10, gamma: float = 0.1) -> float:
    return gamma ** (t // step_size)


def multistep(t: int, total: int, milestones: Sequence[int] = (30, 60), gamma: float = 0.1) -> float:
    return gamma ** sum(t >= m for m in milestones)


def exponential(t: int, total: int, rate: float = 0.96, steps: int = 1000, staircase: bool = False) -> float:
    """lr0 * rate^(t / steps), as in Keras' ExponentialDecay; `staircase` floors the exponent."""
    exponent = t // steps if staircase else t / steps
    return rate**exponent


def inverse_time(t: int, total: int, decay: float = 1e-4) -> float:
    """lr0 / (1 + decay * t): the classic Keras optimizer `decay` argument."""
    return 1.0 / (1.0 + decay * t)


def sqrt(t: int, total: int, steps: int = 1000) -> float:
    """lr0 / sqrt(1 + t / steps)."""
    return 1.0 / math.sqrt(1.0 + t / steps)


def linear(t: int, total: int, end_factor: float = 0.0) -> float:
    progress = min(t / max(total, 1), 1.0)
    return 1.0 + (end_factor - 1.0) * progress


def cosine(t: int, total: int, min_factor: float = 0.0) -> float:
    progress = min(t / max(total, 1), 1.0)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def cosine_restarts(t: int, total: int, period: int = 10, period_mult: float = 1.0, min_factor: float = 0.0) -> float:
    """SGDR: cosine decay that restarts every `period` steps, each period `period_mult` times longer."""
    length = period
    while t >= length:
        t -= length
        length = max(round(length * period_mult), 1)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * t / length))


def onecycle(
    t: int, total: int, pct_start: float = 0.3, div_factor: float = 25.0, final_div_factor: float = 1e4
) -> float:
    """Smith's one-cycle: cosine up from lr0/div_factor to lr0, then down to lr0/(div_factor*final_div_factor)."""
    peak = max(int(pct_start * total), 1)
    start, end = 1.0 / div_factor, 1.0 / (div_factor * final_div_factor)
    if t < peak:
        low, high, progress = start, 1.0, t / peak
    else:
        low, high, progress = end, 1.0, min((t - peak) / max(total - peak, 1), 1.0)
        progress = 1.0 - progress
    return low + (high - low) * 0.5 * (1.0 - math.cos(math.pi * progress))


SCHEDULES: dict[str, Callable[..., float]] = {
    f.__name__: f
    for f in (constant, step, multistep, exponential, inverse_time, sqrt, linear, cosine, cosine_restarts, onecycle)
}
NAMES = (*SCHEDULES, "plateau")


def with_warmup(schedule: Callable[[int], float], warmup: int, start: float = 0.0) -> Callable[[int], float]:
    """Ramp linearly over `warmup` steps from `start` (plus one step's rise) to 1, then hand step t-warmup
    to `schedule`; with start 0 the ramp is (t + 1) / warmup."""
    return lambda t: start + (1.0 - start) * (t + 1) / warmup if t < warmup else schedule(t - warmup)


def build_scheduler(
    optimizer: Optimizer,
    name: str,
    interval: str,
    warmup: int,
    total: int,
    monitor: str | None,
    params: dict,
    warmup_start: float = 0.0,
) -> list[dict]:
    """Lightning `lr_scheduler` configs for `optimizer`; `total` counts `interval` units of the run."""
    if interval not in ("step", "epoch"):
        raise UserError(f"scheduler.interval must be 'step' or 'epoch'; got '{interval}'")
    if warmup < 0:
        raise UserError(f"scheduler.warmup must be >= 0; got {warmup}")
    if not 0.0 <= warmup_start <= 1.0:
        raise UserError(f"scheduler.warmup_start must be in [0, 1]; got {warmup_start}")
    if name == "plateau":
        if not monitor:
            raise UserError("scheduler=plateau needs scheduler.monitor, a logged val metric such as val/loss")
        configs = [_config(_construct(ReduceLROnPlateau, optimizer, params), "epoch", monitor)]
        if warmup > 1:  # the same ramp as `with_warmup`, full lr at t = warmup - 1
            first = warmup_start + (1.0 - warmup_start) / warmup
            configs.insert(0, _config(LinearLR(optimizer, first, 1.0, total_iters=warmup - 1), interval))
        return configs
    if name not in SCHEDULES:
        raise UserError(f"scheduler.name must be one of {', '.join(NAMES)}; got '{name}'")
    shape = SCHEDULES[name]
    _check_params(shape, params)
    length = max(total - warmup, 1)
    schedule = with_warmup(lambda t: shape(t, length, **params), warmup, warmup_start)
    return [_config(LambdaLR(optimizer, schedule), interval)]


def _config(scheduler: LRScheduler | ReduceLROnPlateau, interval: str, monitor: str | None = None) -> dict:
    config = {"scheduler": scheduler, "interval": interval, "frequency": 1, "name": "train/lr"}
    if monitor:
        config["monitor"] = monitor
    return config


def _check_params(fn: Callable, params: dict) -> None:
    accepted = set(inspect.signature(fn).parameters) - {"t", "total", "optimizer"}
    for key in params:
        if key not in accepted:
            raise UserError(
                f"scheduler.{key} is not a parameter of this schedule; it takes {', '.join(sorted(accepted))}"
            )


def _construct(cls: type, optimizer: Optimizer, params: dict):
    _check_params(cls, params)
    return cls(optimizer, **params)
