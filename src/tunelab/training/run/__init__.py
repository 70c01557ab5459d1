"""Run bookkeeping for `train()`: checks before work starts, files a run leaves, the Tuner."""
