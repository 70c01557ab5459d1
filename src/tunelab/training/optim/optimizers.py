"""Optimizer construction with weight decay on weights only."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn
from torch.optim import Optimizer

# Parameters of these layers are scales and shifts, not weights: decaying them only hurts.
_NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def parameter_groups(
    module: nn.Module,
    weight_decay: float,
    lr: float | None = None,
    bias_lr_scale: float = 1.0,
    lr_scales: Mapping[str, float] | None = None,
) -> list[dict]:
    """Split trainable parameters into a decayed group (weights) and an undecayed one (biases, norms).

    The undecayed group trains at `bias_lr_scale` x `lr`. `lr_scales` maps parts of the module
    (`net.embed`; the longest matching name wins) to lr multipliers: each part gets its own groups,
    named after it, and is in the optimizer also while frozen (it trains at its rate once unfrozen;
    training.finetune.Freeze). Returns a single group when nothing is split, so the learning-rate
    monitor logs one curve.
    """
    scales = dict(lr_scales or {})
    split = bool(weight_decay) or bias_lr_scale != 1.0
    no_decay: set[int] = set()
    for sub in module.modules():
        for name, p in sub.named_parameters(recurse=False):
            if isinstance(sub, _NORM_LAYERS) or name.startswith("bias") or p.ndim < 2:
                no_decay.add(id(p))
    groups: dict[tuple[str | None, bool], dict] = {}
    for name, p in module.named_parameters():
        part = max((n for n in scales if name == n or name.startswith(f"{n}.")), key=len, default=None)
        if not p.requires_grad and part is None:
            continue
        undecayed = split and id(p) in no_decay
        if (part, undecayed) not in groups:
            kind = ("no_decay" if undecayed else "decay") if split else None
            where = part.removeprefix("net.") if part else ("rest" if scales else None)
            group = {"params": [], "name": "/".join(x for x in (where, kind) if x) or "all"}
            if split:
                group["weight_decay"] = 0.0 if undecayed else weight_decay
            factor = scales.get(part, 1.0) * (bias_lr_scale if undecayed else 1.0)
            if factor != 1.0:
                group["lr"] = lr * factor
            groups[(part, undecayed)] = group
        groups[(part, undecayed)]["params"].append(p)
    # the rest first, then the scaled parts by name; weights before biases and norms in each
    order = sorted(groups, key=lambda key: (key[0] is not None, key[0] or "", key[1]))
    return [groups[key] for key in order] or [{"params": [], "name": "all"}]


def build_optimizer(
    factory: Callable[..., Optimizer], module: nn.Module, bias_lr_scale: float = 1.0, lr_scales: Mapping | None = None
) -> Optimizer:
    """Call a Hydra `_partial_` optimizer on the module's parameter groups."""
    keywords = getattr(factory, "keywords", {})
    return factory(
        parameter_groups(module, keywords.get("weight_decay", 0.0), keywords.get("lr"), bias_lr_scale, lr_scales)
    )
