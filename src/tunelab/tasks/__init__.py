"""LightningModules: what to compute and log for each task, around a plain nn.Module."""

from tunelab.tasks.classify import ClassifyTask
from tunelab.tasks.forecast import ForecastTask

__all__ = ["ClassifyTask", "ForecastTask"]
