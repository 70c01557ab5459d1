"""Weight decay touches weights only, never biases or normalisation parameters."""

from __future__ import annotations

import torch
from torch import nn

from tunelab.models import RecurrentForecaster
from tunelab.training.optim.optimizers import build_optimizer, parameter_groups


def test_decay_on_weights_only():
    net = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.LayerNorm(8), nn.Linear(8, 2))
    decay, no_decay = parameter_groups(net, 0.1)
    assert {id(p) for p in decay["params"]} == {id(net[0].weight), id(net[3].weight)}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(net.parameters()))


def test_recurrent_biases_are_not_decayed():
    net = RecurrentForecaster(cell="lstm", hidden_sizes=[8, 4], n_inputs=3, output_cols=[0], seq_len=6, horizon=4)
    decay, no_decay = parameter_groups(net, 0.01)
    names = {id(p): n for n, p in net.named_parameters()}
    assert all("weight" in names[id(p)] for p in decay["params"])
    assert all("bias" in names[id(p)] for p in no_decay["params"])


def test_partial_optimizer_gets_the_groups():
    import functools

    net = nn.Linear(3, 3)
    opt = build_optimizer(functools.partial(torch.optim.AdamW, lr=0.1, weight_decay=0.5), net)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.0]
    single = build_optimizer(functools.partial(torch.optim.SGD, lr=0.1), net)
    assert len(single.param_groups) == 1
