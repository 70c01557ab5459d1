"""LR schedule shapes, warmup and the per-step / per-epoch wiring, checked number by number."""

from __future__ import annotations

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR, LinearLR, ReduceLROnPlateau

from tunelab.errors import UserError
from tunelab.training.optim import schedules as S


def lrs(name: str, steps: int, warmup: int = 0, total: int = 100, **params) -> list[float]:
    """The lr seen by each of `steps` optimizer steps, starting from lr 1.0."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    (config,) = S.build_scheduler(opt, name, "step", warmup, total, None, params)
    seen = []
    for _ in range(steps):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        config["scheduler"].step()
    return seen


def test_formulas():
    assert S.step(25, 100, step_size=10, gamma=0.5) == 0.25
    assert S.multistep(15, 100, milestones=[10, 20], gamma=0.1) == pytest.approx(0.1)
    assert S.exponential(500, 0, rate=0.5, steps=1000) == pytest.approx(0.5**0.5)
    assert S.exponential(1500, 0, rate=0.5, steps=1000, staircase=True) == 0.5
    assert S.inverse_time(100, 0, decay=0.01) == 0.5  # lr0 / (1 + decay * t)
    assert S.sqrt(3000, 0, steps=1000) == 0.5  # lr0 / sqrt(1 + t / steps)
    assert S.linear(50, 100, end_factor=0.0) == 0.5
    assert S.cosine(50, 100) == pytest.approx(0.5) and S.cosine(100, 100, min_factor=0.1) == pytest.approx(0.1)
    # SGDR: restarts at 10, then a period of 20 (restart at 30)
    assert S.cosine_restarts(10, 0, period=10, period_mult=2) == 1.0
    assert S.cosine_restarts(20, 0, period=10, period_mult=2) == pytest.approx(0.5)
    assert S.cosine_restarts(30, 0, period=10, period_mult=2) == 1.0


def test_onecycle_rises_to_peak_then_falls_to_floor():
    values = [S.onecycle(t, 100, pct_start=0.3, div_factor=25, final_div_factor=1e4) for t in range(101)]
    assert values[0] == pytest.approx(1 / 25)
    assert max(values) == pytest.approx(1.0) and values.index(max(values)) == 30
    assert values[-1] == pytest.approx(1 / 25 / 1e4)


@pytest.mark.parametrize("name", list(S.SCHEDULES))
def test_warmup_ramps_linearly_then_hands_over(name):
    plain = lrs(name, 30)
    warmed = lrs(name, 40, warmup=10)
    assert warmed[:10] == pytest.approx([(t + 1) / 10 for t in range(10)])
    # after warmup the schedule starts from its own step 0 (spread over total - warmup steps)
    shape = S.SCHEDULES[name]
    assert warmed[10:] == pytest.approx([shape(t, 90) for t in range(30)])
    assert plain[0] == pytest.approx(shape(0, 100))


def test_linear_reaches_end_factor_at_the_last_step():
    seen = lrs("linear", 101, total=100, end_factor=0.1)
    assert seen[-1] == pytest.approx(0.1) and seen[50] == pytest.approx(0.55)


def test_plateau_reduces_after_patience_and_composes_with_warmup():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    configs = S.build_scheduler(opt, "plateau", "epoch", 4, 10, "val/loss", {"patience": 0, "factor": 0.5})
    warm, plateau = (c["scheduler"] for c in configs)
    assert isinstance(warm, LinearLR) and isinstance(plateau, ReduceLROnPlateau)
    assert configs[1]["monitor"] == "val/loss" and configs[1]["interval"] == "epoch"
    ramp = []
    for _ in range(6):
        ramp.append(opt.param_groups[0]["lr"])
        warm.step()
    assert ramp == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])  # same ramp as with_warmup
    plateau.step(1.0)
    plateau.step(1.0)  # no improvement, patience 0: halve
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)


def test_warmup_can_start_from_a_fraction_of_the_lr():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    (config,) = S.build_scheduler(opt, "linear", "step", 4, 14, None, {"end_factor": 0.0}, warmup_start=0.2)
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        config["scheduler"].step()
    assert seen == pytest.approx([0.4, 0.6, 0.8, 1.0, 1.0, 0.9])
    fresh = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    S.build_scheduler(fresh, "plateau", "epoch", 4, 10, "val/loss", {}, warmup_start=0.2)
    assert fresh.param_groups[0]["lr"] == pytest.approx(0.4)  # the plateau warmup ramps alike
    with pytest.raises(UserError, match=r"scheduler\.warmup_start"):
        S.build_scheduler(opt, "linear", "step", 4, 14, None, {}, warmup_start=1.5)


def test_every_schedule_is_a_lambda_with_the_configured_interval():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    for name in S.SCHEDULES:
        (config,) = S.build_scheduler(opt, name, "epoch", 0, 10, None, {})
        assert isinstance(config["scheduler"], LambdaLR) and config["interval"] == "epoch"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cosine", "batch", 0, 10, None, {}), "scheduler.interval"),
        (("cosine", "step", -1, 10, None, {}), "scheduler.warmup"),
        (("nope", "step", 0, 10, None, {}), "scheduler.name"),
        (("cosine", "step", 0, 10, None, {"gamma": 0.1}), "scheduler.gamma"),
        (("plateau", "epoch", 0, 10, None, {}), "scheduler.monitor"),
    ],
)
def test_bad_scheduler_settings_name_the_key(args, message):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(UserError, match=message):
        S.build_scheduler(opt, *args)
