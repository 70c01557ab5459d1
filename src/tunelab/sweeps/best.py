"""best.yaml: a sweep's best configuration as an experiment config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

# Groups that are no part of a recipe: Hydra's own, the search that found it (best.yaml keeps what it
# set) and the machine's paths.
_NOT_RECIPE = ("hydra", "hparams_search", "paths")


def best_config(group: dict[str, Any], metric: str, root: Path, config_name: str) -> str:
    """The best configuration as an experiment config: copy to conf/experiment/, run experiment=NAME.

    Written from the best job's own composed config (`.hydra/config.yaml`), not from its overrides, so
    that what a search config (`hparams_search=...`) set is kept while its sweep settings are not: the
    job's group choices become defaults-list entries and every value that differs from what those
    choices compose to is set explicitly. Machine-local `paths.*` are left out, and so is the seed
    when seeds were swept.
    """
    jobs = group["_jobs"]
    done = [j for j in jobs if j["status"] == "ok"]
    job_dir = root / done[0]["job"]
    job_cfg = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    choices = OmegaConf.to_container(OmegaConf.load(job_dir / ".hydra" / "hydra.yaml").hydra.runtime.choices)
    experiment = [f"experiment={choices['experiment']}"] if choices.get("experiment") else []
    defaults = compose(config_name, experiment).hydra.runtime.choices  # the choices no override needs to make
    # A group that train.yaml leaves null (debug, pruner) cannot be chosen from an experiment: its values are set.
    picked = {
        g: c for g, c in choices.items() if c != defaults.get(g) and defaults.get(g) and not g.startswith(_NOT_RECIPE)
    }
    base = compose(config_name, experiment + [choice(*p) for p in picked.items()])
    values = differences(OmegaConf.to_container(job_cfg), OmegaConf.to_container(base))
    for key in ("paths", *(("seed",) if len(jobs) > 1 else ())):
        values.pop(key, None)

    score = f"{metric} = {group[metric]}" + (f" (mean of {group['finished']} seeds)" if len(jobs) > 1 else "")
    where = f"job {jobs[0]['job']}" if len(jobs) == 1 else "jobs " + ", ".join(j["job"] for j in jobs)
    header = (
        f"# @package _global_\n# Best configuration of the sweep in {root}: {score}, {where}.\n"
        "# Copy into conf/experiment/ and run: python train.py experiment=<name>\n"
    )
    entries = [*(e.partition("=")[2] for e in experiment), *({f"override /{g}": c} for g, c in picked.items())]
    return header + yaml.safe_dump({"defaults": [*entries, "_self_"], **values}, sort_keys=False)


def choice(group: str, option: str | list[str]) -> str:
    """A group choice as a command-line override, quoted so that `precision: '32'` stays a name."""
    options = option if isinstance(option, list) else [option]
    quoted = ",".join(f"'{o}'" for o in options)
    return f"{group}=[{quoted}]" if isinstance(option, list) else f"{group}={quoted}"


def compose(config_name: str, overrides: list[str]) -> DictConfig:
    """The app's config for `overrides`, through the Hydra instance of this (multi)run."""
    return GlobalHydra.instance().hydra.compose_config(config_name, overrides, run_mode=RunMode.RUN)


def differences(config: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The entries of `config` that `base` lacks or holds another value for, nested as in `config`."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "hydra":
            continue
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            nested = differences(value, base[key])
            if nested:
                out[key] = nested
        elif key not in base or base[key] != value:
            out[key] = value
    return out
