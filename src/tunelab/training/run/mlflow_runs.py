"""One MLflow run per training run: a run that continues (`resume=`, a sweep job cut off and started again)
logs into the MLflow run it started, not into a second one under another name.

Lightning's MLFlowLogger continues a run when given its `run_id`; the run is found by its `run_dir` tag
(conf/logger/mlflow.yaml), through MLflow's own search. MLflow refuses to change a parameter's value, so
a continued run logs only the parameters that are new or unchanged, and records the changed ones (a
resume with `trainer.max_epochs=3`) in the tag `changed_on_resume`.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig

RUN_DIR_TAG = "run_dir"
CHANGED_TAG = "changed_on_resume"


def is_mlflow(node: DictConfig) -> bool:
    return str(node.get("_target_", "")).rpartition(".")[2] == MLFlowLogger.__name__


def started_run_id(node: DictConfig) -> str | None:
    """The id of the MLflow run that the logger `node`'s run dir (its `run_dir` tag) started, or None."""
    from mlflow.tracking import MlflowClient

    run_dir = (node.get("tags") or {}).get(RUN_DIR_TAG)
    quote = next((q for q in "'\"" if q not in str(run_dir)), None)
    if run_dir is None or quote is None:
        return None
    client = MlflowClient(node.get("tracking_uri"))
    experiment = client.get_experiment_by_name(node.get("experiment_name"))
    if experiment is None:
        return None
    where = f"tags.{RUN_DIR_TAG} = {quote}{run_dir}{quote}"
    runs = client.search_runs([experiment.experiment_id], where, order_by=["attributes.start_time ASC"], max_results=1)
    return runs[0].info.run_id if runs else None


def log_params(logger: MLFlowLogger, params: dict[str, Any]) -> None:
    """`params` into the logger's run; in a run that has some already, those that changed go into a tag."""
    logged = logger.experiment.get_run(logger.run_id).data.params
    changed = {k: v for k, v in params.items() if k in logged and logged[k] != str(v)[:250]}  # (Lightning's cut)
    logger.log_hyperparams({k: v for k, v in params.items() if k not in changed})
    if changed:
        text = ", ".join(f"{k}: {logged[k]} -> {v}" for k, v in changed.items())
        logger.experiment.set_tag(logger.run_id, CHANGED_TAG, text)
