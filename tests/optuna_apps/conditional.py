"""A search space that a config cannot state: z is drawn near x, and w is a key the config lacks."""

import hydra
from omegaconf import DictConfig
from optuna.trial import Trial


def near_x(cfg: DictConfig, trial: Trial) -> None:
    """custom_search_space: called with the app's config and the trial, after `params` are drawn."""
    x, gap = trial.params["x"], cfg.max_z_difference_from_x
    trial.suggest_float("z", x - gap, x + gap)
    trial.suggest_float("+w", 0.0, 1.0)


# version_base: 1.3 wants it, 1.4 deprecates it (and runs 1.3's defaults without it)
VERSION_BASE = {"version_base": None} if hydra.__version__.startswith("1.3") else {}


@hydra.main(config_path=".", config_name="conditional", **VERSION_BASE)
def conditional(cfg: DictConfig) -> float:
    return float(cfg.x) ** 2 + float(cfg.y) ** 2 + float(cfg.z) ** 2 + float(cfg.w) ** 2


if __name__ == "__main__":
    conditional()
