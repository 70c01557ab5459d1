"""Two objectives that pull apart (Binh and Korn's problem): the search finds a front, not one best."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path=".", config_name="two_objectives")
def two_objectives(cfg: DictConfig) -> tuple[float, float]:
    x, y = float(cfg.x), float(cfg.y)
    return 4 * x**2 + 4 * y**2, (x - 5) ** 2 + (y - 5) ** 2


if __name__ == "__main__":
    two_objectives()
