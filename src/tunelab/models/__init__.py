"""Network architectures (plain nn.Modules; the Lightning glue lives in tunelab.tasks)."""

from tunelab.models.airbench import AirbenchNet
from tunelab.models.base import Forecaster
from tunelab.models.baselines import LinearForecaster, Naive, SeasonalNaive
from tunelab.models.convnets import ResNet9, SmallCNN
from tunelab.models.recurrent import RecurrentForecaster

__all__ = [
    "AirbenchNet",
    "Forecaster",
    "LinearForecaster",
    "Naive",
    "RecurrentForecaster",
    "ResNet9",
    "SeasonalNaive",
    "SmallCNN",
]
