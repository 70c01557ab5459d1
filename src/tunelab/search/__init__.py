"""tunelab's Optuna search engine (Hydra's plugin class in src/hydra_plugins/tunelab_optuna is a shell over it):
the ask/tell loop, search spaces from Hydra's override grammar, samplers seeded per worker, dead-worker leases."""
