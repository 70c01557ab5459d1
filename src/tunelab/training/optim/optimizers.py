"""Optimizer construction with weight decay on weights only."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torch.optim import Optimizer

# Parameters of these layers are scales and shifts, not weights: decaying them only hurts.
_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def parameter_groups(
    module: nn.Module, weight_decay: float, lr: float | None = None, bias_lr_scale: float = 1.0
) -> list[dict]:
    """Split trainable parameters into a decayed group (weights) and an undecayed one (biases, norms).

    The undecayed group trains at `bias_lr_scale` x `lr`. Returns a single group when neither split
    matters, so the learning-rate monitor logs one curve.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    if not weight_decay and bias_lr_scale == 1.0:
        return [{"params": params, "name": "all"}]
    no_decay: set[int] = set()
    for sub in module.modules():
        for name, p in sub.named_parameters(recurse=False):
            if isinstance(sub, _NORM_LAYERS) or name.startswith("bias") or p.ndim < 2:
                no_decay.add(id(p))
    return [
        {"params": [p for p in params if id(p) not in no_decay], "weight_decay": weight_decay, "name": "decay"},
        {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0, "name": "no_decay"}
        | ({"lr": lr * bias_lr_scale} if bias_lr_scale != 1.0 else {}),
    ]


def build_optimizer(factory: Callable[..., Optimizer], module: nn.Module, bias_lr_scale: float = 1.0) -> Optimizer:
    """Call a Hydra `_partial_` optimizer on the module's parameter groups."""
    keywords = getattr(factory, "keywords", {})
    return factory(parameter_groups(module, keywords.get("weight_decay", 0.0), keywords.get("lr"), bias_lr_scale))
