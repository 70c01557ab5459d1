"""A Hydra app that knows nothing of tunelab, as hydra-optuna-sweeper's examples are: x² + y², or an error."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=".", config_name="sphere")
def sphere(cfg: DictConfig) -> float:
    if cfg.get("error"):
        raise RuntimeError("cfg.error is True")
    return float(cfg.x) ** 2 + float(cfg.y) ** 2


if __name__ == "__main__":
    sphere()
