"""A Hydra app that knows nothing of tunelab, as hydra-optuna-sweeper's examples are: x² + y², or an error."""

import hydra
from omegaconf import DictConfig

# version_base: 1.3 wants it, 1.4 deprecates it (and runs 1.3's defaults without it)
VERSION_BASE = {"version_base": None} if hydra.__version__.startswith("1.3") else {}


@hydra.main(config_path=".", config_name="sphere", **VERSION_BASE)
def sphere(cfg: DictConfig) -> float:
    if cfg.get("error"):
        raise RuntimeError("cfg.error is True")
    return float(cfg.x) ** 2 + float(cfg.y) ** 2


if __name__ == "__main__":
    sphere()
