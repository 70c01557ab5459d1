"""Two objectives that pull apart (Binh and Korn's problem): the search finds a front, not one best."""

import hydra
from omegaconf import DictConfig

# version_base: 1.3 wants it, 1.4 deprecates it (and runs 1.3's defaults without it)
VERSION_BASE = {"version_base": None} if hydra.__version__.startswith("1.3") else {}


@hydra.main(config_path=".", config_name="two_objectives", **VERSION_BASE)
def two_objectives(cfg: DictConfig) -> tuple[float, float]:
    x, y = float(cfg.x), float(cfg.y)
    return 4 * x**2 + 4 * y**2, (x - 5) ** 2 + (y - 5) ** 2


if __name__ == "__main__":
    two_objectives()
