"""Forecasting nets and baselines: shapes, normalisation, channel independence, benchmark baselines."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import QUIET, SYNTHETIC, compose_cfg

from tunelab.data import TimeSeriesDataModule
from tunelab.data.series.window_batches import WindowBatches
from tunelab.errors import UserError
from tunelab.models import LinearForecaster, Naive, RecurrentForecaster, SeasonalNaive
from tunelab.models.base import Forecaster
from tunelab.train import train


class Zero(Forecaster):
    """A core that predicts 0 in normalised space: the forecast is then whatever the norm adds back."""

    def core(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], self.horizon, self.core_outputs)


def test_last_value_norm_adds_the_last_value_back():
    x = torch.randn(4, 10, 3)
    y = Zero(n_inputs=3, output_cols=[0, 2], seq_len=10, horizon=5, norm="last")(x)
    assert torch.allclose(y, x[:, -1:, [0, 2]].expand(-1, 5, -1))


def test_revin_restores_each_window_mean():
    x = torch.randn(4, 10, 3) * 5 + 7
    y = Zero(n_inputs=3, output_cols=[1], seq_len=10, horizon=5, norm="revin")(x)
    assert torch.allclose(y, x[:, :, [1]].mean(1, keepdim=True).expand(-1, 5, -1), atol=1e-5)


@pytest.mark.parametrize("norm", ["none", "last", "revin"])
def test_channel_independence_treats_channels_alike(norm):
    torch.manual_seed(0)
    net = RecurrentForecaster(
        n_inputs=3, output_cols=[0, 1, 2], seq_len=12, horizon=4, norm=norm, channel_independent=True, hidden_sizes=[8]
    )
    x = torch.randn(2, 12, 3)
    perm = [2, 0, 1]
    assert net(x).shape == (2, 4, 3)
    assert torch.allclose(net(x[..., perm]), net(x)[..., perm], atol=1e-6)
    # one channel's forecast does not depend on the others
    changed = x.clone()
    changed[..., 1] += 10
    assert torch.allclose(net(changed)[..., [0, 2]], net(x)[..., [0, 2]], atol=1e-6)


def test_joint_model_mixes_channels_and_forecasts_the_targets():
    net = RecurrentForecaster(n_inputs=3, output_cols=[2], seq_len=12, horizon=4, channel_independent=False)
    assert net(torch.randn(2, 12, 3)).shape == (2, 4, 1)


def test_baselines():
    x = torch.arange(2 * 48 * 2, dtype=torch.float32).view(2, 48, 2)
    assert torch.equal(Naive(n_inputs=2, output_cols=[1], seq_len=48, horizon=3)(x), x[:, -1:, [1]].repeat(1, 3, 1))
    snaive = SeasonalNaive(period=24, n_inputs=2, output_cols=[0, 1], seq_len=48, horizon=30)(x)
    assert torch.equal(snaive[:, :24], x[:, 24:]) and torch.equal(snaive[:, 24:], x[:, 24:30])
    linear = LinearForecaster(n_inputs=2, output_cols=[0, 1], seq_len=48, horizon=6, norm="last")
    assert linear(x).shape == (2, 6, 2) and len(list(linear.parameters())) == 2


def protocol_run(tmp_path, experiment: str, model: str) -> dict[str, float]:
    cfg = compose_cfg([f"experiment={experiment}", f"model={model}", "logger=none", *QUIET], tmp_path)
    return train(cfg)


def test_naive_baseline_reproduces_the_published_protocol_numbers(tmp_path, ett_dir):
    metrics = protocol_run(tmp_path, "etth1_lstm_s96", "naive")
    assert metrics["test/mse"] == pytest.approx(0.0693, abs=5e-5)
    assert metrics["test/mae"] == pytest.approx(0.2033, abs=5e-5)


def test_seasonal_naive_on_s336_and_m96(tmp_path, ett_dir):
    assert protocol_run(tmp_path / "a", "etth1_lstm_s336", "seasonal_naive")["test/mse"] == pytest.approx(
        0.1108, abs=5e-5
    )
    assert protocol_run(tmp_path / "b", "etth1_lstm_m96", "seasonal_naive")["test/mse"] == pytest.approx(
        0.512, abs=5e-4
    )


@pytest.mark.slow(reason="trains the etth1_lstm_s96 recipe in full: 100-120 s on this CPU")
def test_lstm_recipe_beats_the_naive_baseline_on_s96(tmp_path, ett_dir):
    """The etth1_lstm_s96 recipe, trained in full: it must beat repeat-the-last-value."""
    metrics = protocol_run(tmp_path, "etth1_lstm_s96", "lstm")
    assert metrics["test/mse"] < 0.0693 and metrics["test/mae"] < 0.2033


def test_ms_with_channel_independence_is_refused_naming_both_keys():
    with pytest.raises(UserError, match=r"data.features=MS with model.net.channel_independent=true"):
        RecurrentForecaster(n_inputs=3, output_cols=[2], seq_len=12, horizon=4, channel_independent=True)
    with pytest.raises(UserError, match="LinearForecaster is always channel independent"):
        LinearForecaster(n_inputs=3, output_cols=[2], seq_len=12, horizon=4)


def test_ms_forecast_reads_the_other_columns():
    torch.manual_seed(0)
    net = RecurrentForecaster(n_inputs=3, output_cols=[2], seq_len=12, horizon=4, channel_independent=False)
    x = torch.randn(2, 12, 3, requires_grad=True)
    net(x).sum().backward()
    assert x.grad[..., :2].abs().sum() > 0  # the covariates move the target's forecast


def test_linear_path_alone_is_nlinear():
    torch.manual_seed(0)
    x = torch.randn(4, 48, 2)
    linear = LinearForecaster(n_inputs=2, output_cols=[0, 1], seq_len=48, horizon=6, norm="last")
    last = x[:, -1:, :]
    nlinear = torch.einsum("hl,blc->bhc", linear.linear.weight, x - last) + linear.linear.bias[:, None] + last
    assert torch.allclose(linear(x), nlinear, atol=1e-5)
    # a recurrent net with the path and a silent core forecasts exactly that
    net = RecurrentForecaster(
        n_inputs=2, output_cols=[0, 1], seq_len=48, horizon=6, norm="last", channel_independent=True, linear=True
    )
    net.linear.load_state_dict(linear.linear.state_dict())
    torch.nn.init.zeros_(net.head.weight), torch.nn.init.zeros_(net.head.bias)
    assert torch.allclose(net(x), nlinear, atol=1e-5)
    torch.nn.init.ones_(net.head.bias)  # and the core's output is added to it
    assert torch.allclose(net(x), nlinear + 1, atol=1e-5)


def test_linear_path_serves_the_joint_model_and_ms():
    net = RecurrentForecaster(
        n_inputs=3, output_cols=[2], seq_len=12, horizon=4, channel_independent=False, linear=True
    )
    x = torch.randn(2, 12, 3)
    torch.nn.init.zeros_(net.head.weight), torch.nn.init.zeros_(net.head.bias)
    expected = (x.transpose(1, 2) @ net.linear.weight.T + net.linear.bias).transpose(1, 2)[..., [2]]
    assert torch.allclose(net(x), expected, atol=1e-5)


@pytest.mark.parametrize("norm", ["none", "last", "revin"])
def test_the_cycle_is_periodic_and_read_at_each_windows_phase(norm):
    torch.manual_seed(0)
    net = Zero(n_inputs=2, output_cols=[1], seq_len=10, horizon=50, norm=norm, cycle=24)
    with torch.no_grad():
        net.cycle_values.copy_(torch.randn(24, 2))
    start = torch.tensor([0, 7, 23, 1000])
    x = net.cycle_values[(start[:, None] + torch.arange(10)) % 24]  # windows that are the cycle exactly
    y = net(x, start)
    expected = net.cycle_values[(start[:, None] + torch.arange(10, 60)) % 24][..., [1]]
    assert torch.allclose(y, expected, atol=1e-5)  # what remains of the window is 0: the forecast is the cycle
    assert torch.allclose(y[:, :26], y[:, 24:], atol=1e-5)  # periodic
    assert torch.allclose(net(x[[3]], start[[3]] - 24 * 40), y[[3]], atol=1e-5)  # a whole number of periods earlier
    with pytest.raises(ValueError, match="cycle needs each window's first row"):
        net(x)


def test_a_bad_cycle_names_the_key():
    with pytest.raises(UserError, match=r"model\.net\.cycle must be a period in rows"):
        Zero(n_inputs=1, output_cols=[0], seq_len=10, horizon=5, cycle=-24)


@pytest.mark.parametrize("features", ["S", "M"])
def test_val_and_test_windows_read_the_cycle_of_their_own_rows(tmp_path, features):
    """A series that is a 24-row cycle exactly, split at rows that are not whole days: the cycle learnt
    from the first rows of training forecasts every val and test window exactly."""
    hours = np.arange(1001)
    profile = np.random.default_rng(0).normal(size=(24, 2))
    frame = pd.DataFrame({"a": profile[hours % 24, 0], "OT": 3 + 5 * profile[hours % 24, 1]})
    frame.to_csv(tmp_path / "cycle.csv", index=False)
    dm = TimeSeriesDataModule(
        path=str(tmp_path / "cycle.csv"), date_column=None, features=features, seq_len=30, horizon=40
    )
    dm.setup()
    net = Zero(n_inputs=dm.n_inputs, output_cols=dm.output_cols, seq_len=30, horizon=40, cycle=24)
    with torch.no_grad():
        net.cycle_values.copy_(dm.datasets["train"].series[:24])  # training starts at row 0: phase = row
    for split in ("train", "val", "test"):
        assert dm.ranges[split][0] % 24 or split == "train"
        x, y, start = WindowBatches.from_dataset(dm.datasets[split], torch.device("cpu"), False, batch_size=8).gather(
            torch.arange(len(dm.datasets[split])), 0, torch.Generator()
        )
        assert torch.allclose(net(x, start), y, atol=1e-5)
        if split != "train":  # counting rows from the split's own start would miss
            assert not torch.allclose(net(x, start - dm.ranges[split][0]), y, atol=1e-2)


def test_cycle_and_linear_path_train_from_the_command_line(tmp_path):
    cfg = compose_cfg(
        [
            *SYNTHETIC,
            "model=segrnn",
            "data.features=M",
            "model.net.seg_len=8",
            "model.net.hidden_sizes=[16]",
            "model.net.cycle=24",
            "model.net.linear=true",
            "trainer.max_epochs=2",
            "logger=none",
            *QUIET,
        ],
        tmp_path,
    )
    metrics = train(cfg)
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    state = torch.load(summary["best_checkpoint"], weights_only=True)["state_dict"]
    assert state["net.cycle_values"].shape == (24, 3) and state["net.cycle_values"].abs().sum() > 0  # learnt
    assert state["net.linear.weight"].shape == (8, 24)
    assert np.isfinite(metrics["test/mse"])
