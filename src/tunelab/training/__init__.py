"""Training glue shared by every task: optimizers, LR schedules, callbacks, run bookkeeping."""
