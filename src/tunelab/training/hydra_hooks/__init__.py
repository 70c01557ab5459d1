"""Hydra-side code: config resolvers and Hydra callbacks around runs and sweeps (the sweeper: src/hydra_plugins)."""
