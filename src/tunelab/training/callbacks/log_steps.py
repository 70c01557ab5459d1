"""When Lightning writes logged values: per-step work that only feeds the logs can skip other steps."""

from __future__ import annotations

import lightning as L


def writes_logs_now(trainer: L.Trainer) -> bool:
    """Whether this training step's logged values go to the loggers (every `log_every_n_steps`).

    A value logged on any other step only refreshes the progress bar, yet each `self.log` costs
    about half a millisecond of Python. Lightning's own LearningRateMonitor asks the same
    (private) question.
    """
    return trainer._logger_connector.should_update_logs
