"""Fine-tuning: another run's weights as the start of a new run, parts of the net frozen or trained slower.

`ckpt_path` and `resume` continue one run (its optimizer, schedule and epochs); the `finetune` group
starts a new one from another run's weights only. Where the tasks differ (another number of classes,
channels or horizon), the net's output layers (`output_modules` of each net) whose shapes differ
start anew; any other difference is a wrong architecture and refused in one line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import BaseFinetuning
from omegaconf import DictConfig
from torch import nn

from tunelab.errors import UserError
from tunelab.training.run.checkpoints import saved_state

log = logging.getLogger(__name__)

BACKBONE = "backbone"  # finetune.freeze=backbone: every part of the net but its output layers


def checkpoint_of(source: str) -> Path:
    """`finetune.from` as a checkpoint file: the file itself, or a run dir's best checkpoint (its metrics.json)."""
    path = Path(source)
    if path.is_file():
        return path
    if not path.is_dir():
        raise UserError(f"finetune.from: no checkpoint file or run dir at {source}")
    try:
        best = json.loads((path / "metrics.json").read_text()).get("best_checkpoint")
    except (OSError, ValueError, AttributeError) as err:
        raise UserError(f"finetune.from: {path} has no readable metrics.json (did the run finish?): {err}") from err
    # by name inside the run dir: the dir may have moved since the run wrote the absolute path
    checkpoint = path / "checkpoints" / Path(best).name if best else None
    if checkpoint is None or not checkpoint.is_file():
        raise UserError(f"finetune.from: {path} has no best checkpoint (metrics.json: best_checkpoint {best!r})")
    return checkpoint


def part_of(net: nn.Module, name: str, key: str) -> nn.Module | nn.Parameter:
    """The net's module or parameter called `name` (`embed`, `layers.0`, `position`); UserError naming `key`."""
    try:
        return net.get_submodule(name)
    except AttributeError:
        pass
    try:
        return net.get_parameter(name)
    except AttributeError:
        parts = [n for n, _ in net.named_children()] + [n for n, _ in net.named_parameters(recurse=False)]
        raise UserError(f"{key}: the net has no module or parameter '{name}'; its parts: {', '.join(parts)}") from None


def under(key: str, names: Iterable[str]) -> bool:
    """Whether state key `key` (`layers.0.weight_ih_l0`) belongs to one of the parts `names`."""
    return any(key == n or key.startswith(f"{n}.") for n in names)


def load_pretrained(net: nn.Module, source: str, fresh: Sequence[str]) -> dict:
    """Copy the net's weights from `source`'s checkpoint (weights only); return what was loaded and what starts anew.

    Only the net is read: the task's own buffers (a forecaster's scaler) belong to the new data. The
    `fresh` parts start anew; so do the net's output layers where their shapes differ from the
    checkpoint's. Any other missing, extra or reshaped tensor raises one line naming the first one.
    """
    for name in fresh:
        part_of(net, name, "finetune.fresh")
    path = checkpoint_of(source)
    state = saved_state(path, "finetune.from")
    saved = {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}
    own = net.state_dict()
    outputs = getattr(net, "output_modules", ())
    loaded, new = {}, []
    for key, value in own.items():
        there = saved.get(key)
        if under(key, fresh) or (under(key, outputs) and (there is None or there.shape != value.shape)):
            new.append(key)
        elif there is not None and there.shape == value.shape:
            loaded[key] = there
        else:
            raise mismatch(path, key, there, value)
    for key, there in saved.items():
        if key not in own and not under(key, [*fresh, *outputs]):
            raise mismatch(path, key, there, None)
    net.load_state_dict(loaded, strict=False)
    log.info(f"finetune: loaded {len(loaded)} tensors from {path}: {', '.join(loaded)}")
    log.info(f"finetune: initialised anew: {', '.join(new) or 'nothing'}")
    return {"from": str(path), "loaded": list(loaded), "fresh": new}


def mismatch(path: Path, key: str, there: torch.Tensor | None, here: torch.Tensor | None) -> UserError:
    def shape(t: torch.Tensor | None) -> str:
        return "absent" if t is None else str(tuple(t.shape))

    return UserError(
        f"finetune.from: {path} does not fit this model: net.{key} is {shape(there)} there and {shape(here)} here; "
        "use the model settings of the run that wrote it, or list the part in finetune.fresh"
    )


def frozen_parts(net: nn.Module, freeze: str | Sequence[str]) -> list[str]:
    """`finetune.freeze` as part names: the list given, or with `backbone` every part but the output layers."""
    if freeze == BACKBONE:
        return backbone(net, getattr(net, "output_modules", ()))
    if isinstance(freeze, str):
        raise UserError(f"finetune.freeze must be a list of the net's parts or '{BACKBONE}'; got '{freeze}'")
    for name in freeze:
        part_of(net, name, "finetune.freeze")
    return list(freeze)


def backbone(module: nn.Module, outputs: Sequence[str], prefix: str = "") -> list[str]:
    """The largest parts of `module` with parameters that hold none of the `outputs` (descending into those that do)."""
    parts = [f"{prefix}{n}" for n, _ in module.named_parameters(recurse=False) if f"{prefix}{n}" not in outputs]
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if full in outputs or not any(True for _ in child.parameters()):
            continue
        if any(o.startswith(f"{full}.") for o in outputs):
            parts += backbone(child, outputs, f"{full}.")
        else:
            parts.append(full)
    return parts


class Freeze(BaseFinetuning):
    """Named parts of the net do not train until `unfreeze_at_epoch` (never when None), in fitting only: the
    net's validation and test leave them as they are, and the fit's end makes them trainable again.

    Lightning's BaseFinetuning calls the two hooks (before the optimizer is built; at each epoch's
    start, also after a resume) and keeps its state in checkpoints. Its `make_trainable` would turn on
    every parameter of a part, also those a net keeps fixed on purpose (airbench's whitening and batch
    norm weights), so this records and restores exactly the parameters it froze. The parts stay in
    the optimizer from the start (at their `lr_scales` rate; see parameter_groups): a frozen parameter
    gets no gradient, so torch's optimizers skip it, and a group that exists from the start follows the
    LR schedule, which one added at the unfreeze epoch (`unfreeze_and_add_param_group`) would not.
    """

    def __init__(self, parts: Sequence[str], unfreeze_at_epoch: int | None) -> None:
        super().__init__()
        self.parts, self.unfreeze_at_epoch = list(parts), unfreeze_at_epoch
        self.frozen: list[nn.Parameter] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":  # Lightning calls setup for validate and test too: they leave the net as it is
            super().setup(trainer, pl_module, stage)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.unfreeze()  # the run's training is over: a later fit of the same net starts from the net as it was

    def unfreeze(self) -> None:
        for p in self.frozen:
            p.requires_grad_(True)
        self.frozen = []

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        for name in self.parts:
            part = part_of(pl_module.net, name, "finetune.freeze")
            params = [part] if isinstance(part, nn.Parameter) else list(part.parameters())
            self.frozen += [p for p in params if p.requires_grad]
        for p in self.frozen:
            p.requires_grad_(False)

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        if self.unfreeze_at_epoch is not None and epoch >= self.unfreeze_at_epoch and self.frozen:
            self.unfreeze()
            log.info(f"finetune: epoch {epoch}: {', '.join(self.parts)} train from now on")


def prepare_finetune(settings: DictConfig, model: L.LightningModule, resuming: bool) -> tuple[dict, list[Freeze]]:
    """Apply the `finetune` group to a built task: load weights (not when resuming: the checkpoint has them),
    set the per-part learning-rate scales, and return what was loaded and the Freeze callback when one is needed."""
    net = model.net
    epoch = settings.get("unfreeze_at_epoch")
    if epoch is not None and (not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0):
        raise UserError(f"finetune.unfreeze_at_epoch must be a non-negative integer or null; got {epoch!r}")
    scales = dict(settings.get("lr_scales") or {})
    for name, scale in [*scales.items(), ("", settings.get("backbone_lr_scale", 1.0))]:
        if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
            key = f"finetune.lr_scales.{name}" if name else "finetune.backbone_lr_scale"
            raise UserError(f"{key} must be a positive number; got {scale!r}")
        if name:
            part_of(net, name, f"finetune.lr_scales.{name}")
    parts = frozen_parts(net, settings.get("freeze") or [])
    if parts and epoch is not None:  # what was frozen trains at the backbone rate once unfrozen
        scales |= {name: float(settings.backbone_lr_scale) for name in parts if name not in scales}
    model.lr_scales = {f"net.{name}": float(scale) for name, scale in scales.items()}
    source = settings.get("from")
    pretrained = load_pretrained(net, source, list(settings.get("fresh") or [])) if source and not resuming else {}
    if any(under(key, getattr(net, "data_init_parts", ())) for key in pretrained.get("loaded", [])):
        model.data_init = False  # the net's init from the data (airbench's whitening) would overwrite what loaded
    return pretrained, [Freeze(parts, epoch)] if parts else []
