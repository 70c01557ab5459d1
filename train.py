"""Train a model: `python train.py [group=option ...] [key=value ...]` (see README.md)."""

import sys

import hydra
from omegaconf import DictConfig

from tunelab.cli import train_argv
from tunelab.entry import main as run
from tunelab.training.hydra_hooks.versions import VERSION_BASE, trusted_targets


@hydra.main(config_path="conf", config_name="train", **VERSION_BASE)
def hydra_main(cfg: DictConfig) -> float | list[float] | None:
    return run(cfg)


def main() -> None:
    """The Hydra app, its config targets trusted (Hydra 1.4's execution whitelist: its callbacks, sweepers, jobs)."""
    with trusted_targets():
        hydra_main()


if __name__ == "__main__":
    sys.argv = train_argv(sys.argv)
    main()
