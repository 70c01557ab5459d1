"""Evaluate a checkpoint: `python eval.py ckpt_path=<run>/checkpoints/<file>.ckpt [predict=true]`."""

import hydra
from omegaconf import DictConfig

from tunelab.evaluate import main as run


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
