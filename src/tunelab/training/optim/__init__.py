"""Optimizers and learning-rate schedules built from the `optimizer` and `scheduler` groups."""
