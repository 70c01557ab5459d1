"""Evaluate a checkpoint on the test split, with the data and model settings of the run that wrote it."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from tunelab.errors import UserError, report, user_message
from tunelab.train import build_data_and_task
from tunelab.training.hydra_hooks import resolvers
from tunelab.training.hydra_hooks.versions import trusted_targets
from tunelab.training.run.checkpoints import check_checkpoint
from tunelab.training.run.precision import device_precision
from tunelab.training.run.quiet import quiet_third_party
from tunelab.training.run.run_files import finite_floats, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

resolvers.register()  # conf/hydra/default.yaml names the run dir with ${run_id:} and ${or:...}


def training_config(ckpt: Path) -> DictConfig:
    """The composed config saved by the training run that holds `ckpt` (<run>/checkpoints/x.ckpt)."""
    if not ckpt.is_file():
        raise UserError(f"ckpt_path: no checkpoint file at {ckpt}")
    saved = ckpt.resolve().parent.parent / ".hydra" / "config.yaml"
    if not saved.is_file():
        raise UserError(f"ckpt_path: {ckpt} is not inside a tunelab run directory (no {saved})")
    return OmegaConf.load(saved)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test metrics of `cfg.ckpt_path` (and predictions.csv with `cfg.predict`), written to this run's dir."""
    quiet_third_party()
    ckpt = Path(cfg.ckpt_path)
    run_cfg = training_config(ckpt)
    output_dir = Path(cfg.paths.output_dir)
    with open_dict(run_cfg):
        run_cfg.paths.output_dir = str(output_dir)  # data paths stay the training run's
    L.seed_everything(run_cfg.seed, workers=True)
    with trusted_targets(run_cfg.get("trusted_targets") or []):  # the training run's (versions.py)
        datamodule, model = build_data_and_task(run_cfg, stage="test")
        trainer = instantiate(
            run_cfg.trainer,
            precision=device_precision(run_cfg.trainer),
            logger=False,
            callbacks=[],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
    check_checkpoint(ckpt, model, "ckpt_path")
    metrics = finite_floats(trainer.test(model, datamodule=datamodule, ckpt_path=str(ckpt), weights_only=True)[0])
    write_json_atomic(output_dir / "metrics.json", {"status": "ok", "checkpoint": str(ckpt), "metrics": metrics})
    if cfg.predict:
        batches = trainer.predict(model, datamodule=datamodule, ckpt_path=str(ckpt), weights_only=True)
        table = datamodule.prediction_table(torch.cat([b.cpu() for b in batches]))
        write_text_atomic(output_dir / "predictions.csv", table.to_csv(index=False))
        log.info(f"Predictions: {output_dir / 'predictions.csv'} ({len(table)} rows)")
    return metrics


def main(cfg: DictConfig) -> None:
    """Hydra entry point of eval.py: bad input ends with one line, as in train.py."""
    try:
        metrics = evaluate(cfg)
    except Exception as err:
        known = user_message(err)
        if known is None:
            raise
        report(f"error: {known}")
        sys.exit(1)
    log.info(f"Test metrics: {metrics}")
    log.info(f"Run directory: {cfg.paths.output_dir}")
