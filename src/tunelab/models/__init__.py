"""Network architectures (plain nn.Modules; the Lightning glue lives in tunelab.tasks)."""

from tunelab.models.recurrent import RecurrentForecaster

__all__ = ["RecurrentForecaster"]
