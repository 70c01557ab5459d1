"""Checks of a checkpoint file against the model that is to load it, each naming the key that gave the file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from tunelab.errors import UserError


def saved_state(path: str | Path, key: str) -> dict:
    """The state_dict of the checkpoint at `path` (loaded weights_only); UserError naming `key` if it is none."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as err:  # torch raises several types for a file that is not a checkpoint
        raise UserError(f"{key}: {path} is not a checkpoint of this project ({str(err).splitlines()[0]})") from err


def check_checkpoint(path: str | Path, model: nn.Module, key: str) -> None:
    """The checkpoint at `path` must hold weights of `model`'s names and shapes (loaded weights_only)."""
    state = saved_state(path, key)
    expected = model.state_dict()
    missing, extra = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    shapes = {k: (tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if k in state}
    reshaped = [f"{k} {saved} vs {wanted}" for k, (saved, wanted) in shapes.items() if saved != wanted]
    if missing or extra or reshaped:
        found = [f"missing {missing[:3]}" * bool(missing), f"unexpected {extra[:3]}" * bool(extra), *reshaped[:3]]
        raise UserError(
            f"{key}: {path} holds the weights of another model ({'; '.join(filter(None, found))}); "
            "use the model= and data= settings of the run that wrote it"
        )
