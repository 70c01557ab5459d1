"""Train a model: `python train.py [group=option ...] [key=value ...]` (see README.md)."""

import sys

import hydra
from omegaconf import DictConfig

from tunelab.cli import train_argv
from tunelab.entry import main as run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | list[float] | None:
    return run(cfg)


if __name__ == "__main__":
    sys.argv = train_argv(sys.argv)
    main()
