"""LightningModules: what to compute and log for each task, around a plain nn.Module."""

import matplotlib

matplotlib.use("Agg")  # figures are rendered to images for TensorBoard, never shown on a screen

from tunelab.tasks.classify import ClassifyTask
from tunelab.tasks.forecast import ForecastTask

__all__ = ["ClassifyTask", "ForecastTask"]
