"""tunelab's Optuna sweeper (Hydra finds sweepers only in the hydra_plugins package)."""
