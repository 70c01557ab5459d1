"""Optuna pruning inside a Hydra job: report after every validation, stop the trial when the pruner says so.

The sweeper (tunelab.search) puts the study's storage, name and the job's trial
number in the job's environment; the job opens the same storage and reports to its own trial. A
pruned job stops after the validation that decided it, skips the final validation and test, and
writes `status: pruned` to metrics.json, which the sweeper reads to tell the trial PRUNED.

Why not optuna-integration's PyTorchLightningPruningCallback: it ends a pruned trial by raising
TrialPruned inside `trainer.fit`, which the job would have to tell apart from a failure, and it needs an
RDB storage under DDP; stopping through `trainer.should_stop` ends the run as cleanly as early stopping.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from omegaconf import DictConfig

from tunelab.training.hydra_hooks.versions import allow
from tunelab.training.optuna_storage import TRIAL_ENV, connect

if TYPE_CHECKING:  # optuna is the optional `sweep` extra: imported only when a search runs
    import optuna

log = logging.getLogger(__name__)


def make_pruner(node: DictConfig | None) -> optuna.pruners.BasePruner:
    """The `pruner` group's pruner; no pruner (NopPruner) when the group is unset."""
    import optuna

    return instantiate(node, **allow("optuna.pruners.*")) if node else optuna.pruners.NopPruner()


class OptunaPruning(Callback):
    """Report `monitor` to the trial after each validation of `fit`; stop the run when the trial should be pruned.

    Steps count validations (0, 1, ...): with one validation per epoch the step is the epoch, the unit
    of the pruners' warm-up and resource settings. Under DDP rank 0 reports and decides, and every
    rank stops together.
    """

    def __init__(self, trial: optuna.Trial, monitor: str, first_step: int = 0) -> None:
        self.trial, self.monitor = trial, monitor
        self.step = first_step  # a retried trial starts with its dead predecessor's values (tunelab/search/leases.py)
        self.pruned_value: float | None = None  # the last reported value, once pruned

    @property
    def pruned(self) -> bool:
        return self.pruned_value is not None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return  # the sanity check and the final validate() of the best checkpoint are not steps
        value = trainer.callback_metrics.get(self.monitor)
        prune = False
        if trainer.is_global_zero and value is not None:
            self.trial.report(float(value), self.step)
            prune = self.trial.should_prune()
        self.step += 1
        if trainer.strategy.broadcast(prune, src=0):
            self.pruned_value = float(value) if value is not None else float("nan")
            trainer.should_stop = True
            log.info(f"trial {self.trial.number} pruned after validation {self.step - 1}: {self.monitor} = {value}")


def trial_pruning(cfg: DictConfig, objectives: list[str]) -> OptunaPruning | None:
    """The pruning callback (reporting the objective) of a job that an Optuna search launched, or None for any
    other run."""
    if os.environ.get(TRIAL_ENV[2]) is None or not cfg.get("pruner"):
        return None
    if len(objectives) > 1:
        if "NopPruner" not in str(cfg.pruner.get("_target_")):
            log.warning(f"pruner={cfg.pruner._target_}: Optuna prunes only searches of one objective; not pruned")
        return None
    import optuna

    storage_url, study_name, number = (os.environ[name] for name in TRIAL_ENV)
    storage = connect(storage_url)
    study_id = storage.get_study_id_from_name(study_name)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, int(number))
    study = optuna.load_study(study_name=study_name, storage=storage, pruner=make_pruner(cfg.pruner))
    reported = storage.get_trial(trial_id).intermediate_values
    return OptunaPruning(optuna.Trial(study, trial_id), monitor=objectives[0], first_step=len(reported))
