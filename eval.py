"""Evaluate a checkpoint: `python eval.py ckpt_path=<run>/checkpoints/<file>.ckpt [predict=true]`."""

import hydra
from omegaconf import DictConfig

from tunelab.evaluate import main as run
from tunelab.training.hydra_hooks.versions import VERSION_BASE, trusted_targets


@hydra.main(config_path="conf", config_name="eval", **VERSION_BASE)
def hydra_main(cfg: DictConfig) -> None:
    run(cfg)


def main() -> None:
    """The Hydra app, its config targets trusted (Hydra 1.4's execution whitelist)."""
    with trusted_targets():
        hydra_main()


if __name__ == "__main__":
    main()
