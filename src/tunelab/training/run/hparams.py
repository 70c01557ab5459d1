"""The hyperparameters a run reports to its loggers: what a user tunes, not how the run is plumbed.

`run_hparams` keeps the config group choices (`optimizer: rmsprop`) and the scalar settings of the
sections that define the model and its training (lr, betas, hidden sizes, seg_len, seq_len, batch
size, precision, seed, ...), flattened to `a/b/c` keys; `_target_`, paths, URLs and checksums,
callbacks, loggers and Hydra's own settings stay out. In a sweep, the keys the sweep varies come
first and are marked as differing in TensorBoard's HPARAMS tab, which lists those first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger
from omegaconf import DictConfig, OmegaConf
from tensorboard.plugins.hparams import plugin_data_pb2
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from tunelab.training.run.mlflow_runs import log_params

Scalar = bool | int | float | str

# Groups that say how to run, not what is trained: their choices are not hyperparameters.
RUN_GROUPS = ("paths", "logger", "callbacks", "debug", "hparams_search", "pruner", "trainer")
# Sections whose settings are hyperparameters, and the keys in them that are plumbing or protocol.
SECTIONS = ("data", "model", "optimizer", "scheduler", "clipping", "early_stopping", "finetune")
PLUMBING = {"_target_", "_partial_", "path", "root", "url", "sha256", "md5", "date_column", "borders"}
PLUMBING |= {"monitor", "mode"}  # early stopping's: fixed by the task, not tuned
TRAINER_KEYS = ("precision", "max_epochs", "accumulate_grad_batches")


def run_hparams(cfg: DictConfig, varied: set[str]) -> dict[str, Scalar]:
    """Group choices, then scalar settings, as `key: primitive`; the `varied` keys (`varied_keys()`) first."""
    params: dict[str, Scalar] = {}
    if HydraConfig.initialized():
        choices = HydraConfig.get().runtime.choices
        params |= {g: str(o) for g, o in choices.items() if o is not None and not g.startswith(("hydra", *RUN_GROUPS))}
    resolved = OmegaConf.to_container(cfg, resolve=True)
    for section in SECTIONS:
        flatten(section, resolved.get(section) or {}, params)
    params |= {f"trainer/{k}": primitive(resolved["trainer"][k]) for k in TRAINER_KEYS if k in resolved["trainer"]}
    params |= {"seed": resolved["seed"], "recipe": primitive(resolved.get("recipe"))}
    if resolved.get("threads"):  # set by the user: it changes the speed, so it is shown (null: the machine's share)
        params["threads"] = resolved["threads"]
    return {k: params[k] for k in sorted(params, key=lambda k: k not in varied)}


def flatten(prefix: str, node: Any, out: dict[str, Scalar]) -> None:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key not in PLUMBING:
                flatten(f"{prefix}/{key}", value, out)
    else:
        out[prefix] = primitive(node)


def primitive(value: Any) -> Scalar:
    """What TensorBoard can show: lists as their string form, null as "null"."""
    if value is None:
        return "null"
    return value if isinstance(value, bool | int | float | str) else str(value)


def log_hparams(loggers: list[Logger], params: dict[str, Scalar], metrics: dict[str, float], varied: set[str]) -> None:
    """The hyperparameters for every logger; TensorBoard's HPARAMS tab also lists the final metrics.

    Lightning's `TensorBoardLogger.log_hyperparams(params, metrics)` logs each metric again at step 0,
    which puts a false first point on every curve, and cannot mark the swept keys. The HPARAMS tab
    reads metric values from the scalars already logged under the same tags, so only the hparams
    summaries are written here, with `differs` set on the `varied` keys (the tab lists differing keys
    first).
    """
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):  # a continued run keeps the values it started with (mlflow_runs.py)
            log_params(logger, params)
            continue
        if not isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params)
            continue
        experiment, start, end = hparams_summaries(params, metrics)
        content = experiment.value[0].metadata.plugin_data
        data = plugin_data_pb2.HParamsPluginData.FromString(content.content)
        for info in data.experiment.hparam_infos:
            info.differs = info.name in varied
        content.content = data.SerializeToString()
        writer = logger.experiment._get_file_writer()
        for summary in (experiment, start, end):
            writer.add_summary(summary)
        writer.flush()
