"""The training pipeline: data, model, callbacks, loggers, trainer, fit, validate and test the best weights."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelSummary, ProgressBar
from lightning.pytorch.loggers import Logger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from tunelab.errors import UserError
from tunelab.training.callbacks.pruning import trial_pruning
from tunelab.training.callbacks.thread_share import ThreadShare
from tunelab.training.finetune import prepare_finetune
from tunelab.training.hydra_hooks.versions import trusted_targets
from tunelab.training.run.checkpoints import check_checkpoint
from tunelab.training.run.checks import check_config, check_monitors
from tunelab.training.run.hparams import log_hparams, run_hparams
from tunelab.training.run.mlflow_runs import is_mlflow, started_run_id
from tunelab.training.run.naming import varied_keys
from tunelab.training.run.precision import device_precision, warn_emulated_bf16
from tunelab.training.run.quiet import quiet_third_party
from tunelab.training.run.run_files import finite_floats, write_json_atomic
from tunelab.training.run.sweep_resume import in_multirun
from tunelab.training.run.tuning import tune

log = logging.getLogger(__name__)


@dataclass
class Job:
    """A run built and checked, ready to fit; nothing in its run dir is written yet."""

    datamodule: L.LightningDataModule
    model: L.LightningModule
    trainer: L.Trainer
    loggers: list[Logger]
    pruning: Callback | None
    tuned: dict[str, float]
    ckpt_path: str | None
    objectives: list[str]  # optimized_metric (one or several), or the task's own when that is null
    started: float
    pretrained: dict  # finetune.from: the checkpoint, the tensors loaded and those started anew


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job described by `cfg`; return its final metrics (also in metrics.json)."""
    return fit_and_test(cfg, prepare(cfg))


def prepare(cfg: DictConfig) -> Job:
    """Data, model, callbacks, loggers and trainer, with every check that can refuse the run. The config's targets
    that may run (Hydra 1.4's execution whitelist) are tunelab's own and those `trusted_targets` lists."""
    with trusted_targets(cfg.get("trusted_targets") or []):
        return assemble(cfg)


def assemble(cfg: DictConfig) -> Job:
    check_config(cfg)
    quiet_third_party()
    torch.set_float32_matmul_precision("high")
    L.seed_everything(cfg.seed, workers=True)
    started = time.perf_counter()
    datamodule, model = build_data_and_task(cfg)
    check_monitors(cfg, model.val_metric_names)
    given = cfg.get("optimized_metric")
    objectives = [given] if isinstance(given, str) else list(given or []) or [model.optimized_metric]
    # resume=<run dir> runs in that dir (conf/hydra/default.yaml) and continues from its last.ckpt
    ckpt_path = cfg.ckpt_path or ("last" if cfg.resume else None)
    pretrained, freeze = prepare_finetune(cfg.finetune, model, resuming=ckpt_path is not None)
    loggers = build_loggers(cfg.get("logger"), continuing=ckpt_path is not None)
    pruning = trial_pruning(cfg, objectives)  # a job of a pruned Optuna search reports to its trial
    callbacks = build_callbacks(cfg, loggers) + ([pruning] if pruning else []) + thread_setting(cfg) + freeze
    precision = device_precision(cfg.trainer)
    trainer: L.Trainer = instantiate(cfg.trainer, precision=precision, callbacks=callbacks, logger=loggers or False)
    warn_emulated_bf16(trainer)

    # "best" names no file before fit; "last" is this run dir's last.ckpt when there is one
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    given = {"last": last, "best": None, None: None}.get(ckpt_path, ckpt_path)
    if given is not None and Path(given).is_file():
        check_checkpoint(given, model, "resume" if cfg.resume else "ckpt_path")
    tuned = tune(trainer, model, datamodule, cfg.tune) if cfg.tune.lr_find or cfg.tune.batch_size else {}
    return Job(datamodule, model, trainer, loggers, pruning, tuned, ckpt_path, objectives, started, pretrained)


def fit_and_test(cfg: DictConfig, job: Job) -> dict[str, float]:
    """fit_test_and_record, then end the job's logger runs (close_loggers), as failed when something raised."""
    try:
        metrics = fit_test_and_record(cfg, job)
    except BaseException:
        close_loggers(job.loggers, exit_code=1)
        raise
    close_loggers(job.loggers, exit_code=0)
    return metrics


def fit_test_and_record(cfg: DictConfig, job: Job) -> dict[str, float]:
    """Fit, then validate and test the best checkpoint; write metrics.json and the HPARAMS entry."""
    trainer, model, datamodule, pruning = job.trainer, job.model, job.datamodule, job.pruning
    fit_started, first_epoch = time.perf_counter(), trainer.current_epoch
    if any(p.requires_grad for p in model.parameters()):  # baselines such as model=naive have nothing to fit
        trainer.fit(model, datamodule=datamodule, ckpt_path=job.ckpt_path)
    measured = run_metrics(model, time.perf_counter() - fit_started, trainer.current_epoch - first_epoch)
    # Keras' restore_best_weights: score the checkpoint with the best val loss, not the last epoch.
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    ckpt = best or None
    pruned = pruning is not None and pruning.pruned
    if pruned:  # the search has stopped caring: no final validation, no test
        metrics = finite_floats({pruning.monitor: pruning.pruned_value})
    else:
        metrics = finite_floats(trainer.validate(model, datamodule=datamodule, ckpt_path=ckpt, verbose=False)[0])
        metrics.update(finite_floats(trainer.test(model, datamodule=datamodule, ckpt_path=ckpt)[0]))
    metrics.update(measured)

    summary = {
        "status": "pruned" if pruned else "ok",
        "metrics": metrics,
        "optimized_metric": job.objectives[0] if len(job.objectives) == 1 else job.objectives,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "best_checkpoint": best or None,
        "seconds": round(time.perf_counter() - job.started, 2),
        "tuned": job.tuned,
        **({"finetune": job.pretrained} if job.pretrained else {}),
        "precision": str(trainer.precision),  # what ran: bf16-native is bf16-mixed or 32-true by the hardware
        "threads": torch.get_num_threads(),  # torch's threads at the end (ThreadShare may change them per epoch)
    }
    if trainer.is_global_zero:
        for logger in job.loggers:  # beside the task's curves, so that TensorBoard's HPARAMS tab shows them
            logger.log_metrics(measured, step=trainer.global_step)
        write_json_atomic(Path(cfg.paths.output_dir) / "metrics.json", summary)
        varied = varied_keys()  # read once from the sweep's multirun.yaml: the order and the `differs` marks
        log_hparams(job.loggers, {**run_hparams(cfg, varied), **job.tuned}, metrics, varied)
    return metrics


def run_metrics(model: L.LightningModule, fit_seconds: float, epochs: int) -> dict[str, float]:
    """What the run measures of itself (checks.RUN_METRICS): parameters, and seconds per epoch it trained."""
    measured = {"model/params": float(sum(p.numel() for p in model.parameters()))}
    if epochs > 0:
        measured["time/epoch"] = fit_seconds / epochs
    return measured


def build_data_and_task(cfg: DictConfig, stage: str = "fit") -> tuple[L.LightningDataModule, L.LightningModule]:
    """The data module, fetched and set up for `stage`, and the task sized for it (seed before calling)."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup(stage)
    return datamodule, build_task(cfg, datamodule)


def build_task(cfg: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    """Instantiate the task (`model` group) around a net sized for the data."""
    task_class = get_class(cfg.model._target_)
    if task_class.kind != datamodule.kind:
        raise UserError(
            f"model: {task_class.__name__} is a {task_class.kind} model, but the data ({type(datamodule).__name__}) "
            f"needs a {datamodule.kind} model; pick a matching model= option"
        )
    return instantiate(
        cfg.model,
        net=instantiate(cfg.model.net, **datamodule.net_dims()),
        optimizer=instantiate(cfg.optimizer),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True),
        **datamodule.task_info(),
    )


def build_callbacks(cfg: DictConfig, loggers: list[Logger]) -> list[Callback]:
    """The `callbacks` group and early stopping, less those this run has no use for."""
    callbacks = instantiate_each(cfg.get("callbacks")) + instantiate_each({"early": cfg.get("early_stopping")})
    if not loggers:  # with logger=none there is nowhere to send the learning-rate curve
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a bar callback then
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if not cfg.trainer.get("enable_model_summary", True):  # the summary callback would print all the same
        callbacks = [c for c in callbacks if not isinstance(c, ModelSummary)]
    return callbacks


def thread_setting(cfg: DictConfig) -> list[Callback]:
    """Torch's threads: `threads` when set, else an OMP_NUM_THREADS the environment sets (torch read it at start);
    else, in a sweep, this job's share of the machine's cores among the sweep's jobs running on it (ThreadShare);
    alone, all of them (torch's default)."""
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
        return []
    if in_multirun() and not os.environ.get("OMP_NUM_THREADS"):
        return [ThreadShare(Path(HydraConfig.get().sweep.dir) / ".threads")]
    return []


def build_loggers(group: Mapping | None, continuing: bool) -> list[Logger]:
    """The `logger` group; a run that continues from a checkpoint logs into the MLflow run it started."""
    nodes = with_target(group)
    return [instantiate(n, run_id=started_run_id(n)) if continuing and is_mlflow(n) else instantiate(n) for n in nodes]


def close_loggers(loggers: list[Logger], exit_code: int) -> None:
    """End this job's W&B run, which outlives the trainer in the process (`wandb.run`): Lightning's WandbLogger
    reuses an open run, so the next job of an in-process multirun logged into this one. Finishing also writes
    an offline run's file whole before the job returns."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb  # only where a W&B logger ran: wandb is an optional extra

        wandb.finish(exit_code=exit_code)


def instantiate_each(group: Mapping | None) -> list[Callback | Logger]:
    """Instantiate every entry with a `_target_` in a callbacks / logger group."""
    return [instantiate(node) for node in with_target(group)]


def with_target(group: Mapping | None) -> list[DictConfig]:
    """The entries of a callbacks / logger group that name a `_target_` (`none` options have none)."""
    return [node for node in (group or {}).values() if node and "_target_" in node]
