"""Training glue shared by every task, by where it runs.

- `callbacks/`: Lightning callbacks and plugins, inside `trainer.fit` (gradient monitor, NaN guard,
  Lookahead, progress bar, atomic checkpoints and RNG states, Optuna pruning).
- `hydra_hooks/`: Hydra-side code, around the jobs (config resolvers, the output-folder check, the
  sweep summary). The Optuna search is `tunelab.search`; Hydra finds its plugin class only in
  `src/hydra_plugins/tunelab_optuna/`.
- `run/`: run bookkeeping in `train()` (config checks, metrics.json and hyperparameters, the Tuner).
- `optim/`: optimizers with decay on weights only, learning-rate schedules.
"""
