"""Forecasting nets and baselines: shapes, normalisation, channel independence, benchmark baselines."""

from __future__ import annotations

import pytest
import torch
from conftest import QUIET, compose_cfg

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


def test_lstm_recipe_beats_the_naive_baseline_on_s96(tmp_path, ett_dir):
    """The etth1_lstm_s96 recipe, trained in full (about 20 s): it must beat repeat-the-last-value."""
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
