"""Lightning's Tuner, switched on by config: find the learning rate and/or the batch size before fit."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.tuner import Tuner
from omegaconf import DictConfig


def tune(trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule, cfg: DictConfig) -> dict:
    """Run the finders `cfg` asks for, apply what they find to the run, and return it (`tune/*`).

    The batch size is searched first (the best learning rate depends on it), growing from the configured
    one until a trial fails (out of memory) or `batch_size_trials` doublings are done. The LR finder's curve
    goes to TensorBoard as `tune/lr_finder`.
    """
    found: dict[str, float] = {}
    tuner = Tuner(trainer)
    if cfg.batch_size:
        found["tune/batch_size"] = tuner.scale_batch_size(
            model,
            datamodule=datamodule,
            mode="binsearch",
            init_val=datamodule.batch_size,
            max_trials=cfg.batch_size_trials,
        )
    if cfg.lr_find:
        finder = tuner.lr_find(model, datamodule=datamodule, num_training=cfg.lr_find_steps, update_attr=False)
        lr = finder.suggestion() if finder is not None else None
        if lr is not None:
            model.set_learning_rate(lr)
            found["tune/lr"] = lr
            model.log_figure("tune/lr_finder", finder.plot(suggest=True))
    return found
