"""The segment-wise recurrent forecaster: shapes, one batched decoding call, channel embedding, recipes."""

from __future__ import annotations

import math
import re

import pytest
import torch
from conftest import QUICK, compose_cfg, group_options
from omegaconf import OmegaConf

from tunelab.errors import UserError
from tunelab.models import RecurrentForecaster
from tunelab.train import build_data_and_task, train
from tunelab.training.optim.schedules import build_scheduler

# (encoder seg_len, decoder, channel embedding): the per-timestep and segment encoders, both decoders
VARIANTS = [(0, "direct", False), (6, "direct", False), (6, "parallel", False), (6, "parallel", True)]


def net(cell="gru", seg_len=6, decoder="parallel", channel_embedding=False, **kwargs) -> RecurrentForecaster:
    dims = {"n_inputs": 3, "output_cols": [0, 1, 2], "seq_len": 24, "horizon": 12, "channel_independent": True}
    dims.update(kwargs)
    return RecurrentForecaster(
        cell=cell, hidden_sizes=[16], seg_len=seg_len, decoder=decoder, channel_embedding=channel_embedding, **dims
    )


# M: channel independent; MS: joint (independent channels would leave the covariates unread), so no
# channel embedding, which needs channel independence
SHAPE_CASES = [("M", *v) for v in VARIANTS] + [("MS", *v) for v in VARIANTS if not v[2]]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize(("features", "seg_len", "decoder", "channel_embedding"), SHAPE_CASES)
def test_output_shape_for_every_cell_encoder_and_decoder(cell, seg_len, decoder, channel_embedding, features):
    cols = [0, 1, 2] if features == "M" else [2]
    model = net(
        cell, seg_len, decoder, channel_embedding, output_cols=cols, norm="last", channel_independent=features == "M"
    )
    y = model(torch.randn(5, 24, 3))
    assert y.shape == (5, 12, len(cols)) and torch.isfinite(y).all()
    y.sum().backward()  # every parameter takes part in the forecast
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize(("seg_len", "decoder"), [(0, "direct"), (6, "direct"), (6, "parallel")])
def test_joint_model_mixes_channels_with_segments(seg_len, decoder):
    model = net(seg_len=seg_len, decoder=decoder, channel_independent=False, output_cols=[1])
    x = torch.randn(2, 24, 3)
    changed = x.clone()
    changed[..., 0] += 1.0
    assert model(x).shape == (2, 12, 1) and not torch.allclose(model(changed), model(x))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [[16], [16, 8]])
def test_all_output_segments_are_decoded_in_one_recurrent_call_per_layer(cell, layers):
    model = RecurrentForecaster(
        cell=cell, hidden_sizes=layers, seg_len=6, decoder="parallel", channel_embedding=True,
        n_inputs=3, output_cols=[0, 1, 2], seq_len=24, horizon=12, channel_independent=True,
    )  # fmt: skip
    calls: list[tuple[int, ...]] = []
    for layer in model.layers:
        layer.register_forward_hook(lambda module, args, out: calls.append(tuple(args[0].shape)))
    model(torch.randn(5, 24, 3))
    rows = 5 * 3  # windows x channels
    encoder, decoder = calls[: len(layers)], calls[len(layers) :]
    # the encoder runs over 24 / 6 = 4 segments; the decoder over all 12 / 6 = 2 output segments at once
    assert [shape[:2] for shape in encoder] == [(rows, 4)] * len(layers)
    assert [shape[:2] for shape in decoder] == [(rows * 2, 1)] * len(layers)


def test_channel_embedding_tells_the_shared_network_which_channel_it_forecasts():
    torch.manual_seed(0)
    x, perm = torch.randn(2, 24, 3), [2, 0, 1]
    plain, embedded = net(channel_embedding=False), net(channel_embedding=True)
    assert torch.allclose(plain(x[..., perm]), plain(x)[..., perm], atol=1e-6)  # channels are interchangeable
    assert not torch.allclose(embedded(x[..., perm]), embedded(x)[..., perm], atol=1e-4)
    changed = x.clone()  # still channel-independent: one channel's values never reach another's forecast
    changed[..., 1] += 10
    assert torch.allclose(embedded(changed)[..., [0, 2]], embedded(x)[..., [0, 2]], atol=1e-6)


def test_segment_encoder_runs_fewer_recurrent_steps_than_timesteps():
    calls: list[int] = []
    model = net(seg_len=12, decoder="direct", seq_len=96, horizon=24)
    model.layers[0].register_forward_hook(lambda module, args, out: calls.append(args[0].shape[1]))
    model(torch.randn(2, 96, 3))
    assert calls == [8]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"seg_len": 5}, "model.net.seg_len=5 must divide data.seq_len=24"),
        ({"seg_len": 8}, "model.net.seg_len=8 must divide data.horizon=12"),
        ({"seg_len": 0}, "model.net.decoder=parallel predicts segments: set model.net.seg_len > 0"),
        ({"seg_len": -2, "decoder": "direct"}, "model.net.seg_len must be >= 0"),
        ({"decoder": "rmf"}, "model.net.decoder must be one of direct, parallel; got 'rmf'"),
        ({"channel_embedding": True, "decoder": "direct"}, "model.net.channel_embedding needs"),
        ({"channel_embedding": True, "channel_independent": False}, "model.net.channel_independent=true"),
    ],
)
def test_impossible_settings_fail_in_one_line(settings, message):
    with pytest.raises(UserError) as info:
        net(**settings)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_recipe_schedule_holds_the_lr_four_epochs_then_decays_by_a_fifth(tmp_path):
    cfg = compose_cfg(["experiment=etth1_m96"], tmp_path)
    params = OmegaConf.to_container(cfg.scheduler)
    name, interval = params.pop("name"), params.pop("interval")
    warmup, start = params.pop("warmup"), params.pop("warmup_start")
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3)
    [config] = build_scheduler(optimizer, name, interval, warmup, 30, None, params, start)
    lrs = []
    for _ in range(7):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        config["scheduler"].step()
    assert interval == "epoch"
    assert lrs == pytest.approx([1e-3] * 4 + [8e-4, 6.4e-4, 5.12e-4])


ETTH1_RECIPES = [name for name in group_options("experiment") if re.fullmatch(r"etth1_(lstm_)?[sm]\d+", name)]


@pytest.mark.parametrize(
    "overrides",
    [[f"experiment={name}"] for name in ETTH1_RECIPES] + [["experiment=etth1_m96", "data.seq_len=336"]],
    ids=" ".join,
)
def test_every_etth1_table_recipe_composes_and_runs_a_short_fit(overrides, tmp_path, ett_dir):
    settings = re.fullmatch(r"experiment=etth1_(lstm_)?([sm])(\d+)", overrides[0])
    per_timestep, features, horizon = settings[1], settings[2].upper(), int(settings[3])
    one_epoch = ["trainer.max_epochs=1", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1"]
    cfg = compose_cfg([*overrides, *QUICK, *one_epoch, "logger=none", "data.batch_size=32"], tmp_path)  # the wiring
    assert cfg.data.features == features and cfg.data.horizon == horizon and cfg.recipe.startswith(overrides[0][11:])
    assert (cfg.model.net.seg_len == 0) if per_timestep else (cfg.model.net.decoder == "parallel")
    _, task = build_data_and_task(cfg)
    assert task.net.n_channels == (7 if features == "M" else 1) and task.net.seq_len == cfg.data.seq_len
    metrics = train(cfg)
    assert 0 < metrics["test/mse"] < 5 and math.isfinite(metrics["val/mse"])


def test_command_line_groups_still_win_over_the_segment_recipe(tmp_path):
    cfg = compose_cfg(["experiment=etth1_m96_hand", "model=lstm", "model.net.cell=rnn", "optimizer=rmsprop"], tmp_path)
    assert cfg.model.net.seg_len == 0 and cfg.model.net.cell == "rnn" and cfg.optimizer._target_.endswith("RMSprop")
    cfg = compose_cfg(["experiment=etth1_m96_hand", "model.net.cell=lstm"], tmp_path)
    assert cfg.model.net.cell == "lstm" and cfg.model.net.seg_len == 24
