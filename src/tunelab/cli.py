"""Command-line shims that Hydra's override grammar and `resume=` need, and composing the config without a Hydra run."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from tunelab.errors import UserError, report
from tunelab.training.hydra_hooks import resolvers
from tunelab.training.hydra_hooks.versions import VERSION_BASE
from tunelab.training.run.resume import KEY as RESUME_KEY
from tunelab.training.run.resume import override_key, resume_overrides, split_flags

# Groups whose option names are numbers (precision=32, precision=64). Hydra parses `precision=64` as
# the integer 64 and refuses it as a group choice, so such values are quoted before Hydra sees them.
NUMERIC_GROUPS = ("precision",)
SEARCH_GROUP = "hparams_search"  # conf/hparams_search: a search, run as a multirun
# Hydra's flags that choose what a command does: with one of them a search is not started (Hydra takes one only).
MODE_FLAGS = {"-m", "--multirun", "-r", "--run", "-c", "--cfg", "-i", "--info", "-sc", "--shell-completion"}


def quote_numeric_choices(argv: Sequence[str]) -> list[str]:
    """`precision=64` -> `precision='64'`; `precision=32,64` -> `precision='32','64'` (a sweep)."""
    out = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("~+") in NUMERIC_GROUPS and re.fullmatch(r"\d+(,\d+)*", value):
            arg = f"{key}=" + ",".join(f"'{v}'" for v in value.split(","))
        out.append(arg)
    return out


def search_multirun(args: Sequence[str]) -> list[str]:
    """`hparams_search=<name>` with or without `-m`: a search is a multirun either way. Hydra 1.4 takes the mode
    from the command line or the primary config only, not from a group such as conf/hparams_search, so the flag
    is added here, the same on both lines. Not for `resume=`: that continues one job of a search."""
    flags, overrides = split_flags(args)
    given = {override_key(a): a.partition("=")[2] for a in overrides}  # each key's last value
    searching, resuming = (given.get(key) not in (None, "", "null") for key in (SEARCH_GROUP, RESUME_KEY))
    if searching and not resuming and not MODE_FLAGS & set(flags):
        return ["-m", *args]
    return list(args)


def train_argv(argv: Sequence[str]) -> list[str]:
    """train.py's command line as Hydra should see it: numeric choices quoted, a search made a multirun, `resume=`
    expanded to the run's own overrides. A run dir with nothing to resume ends the process in one line, before
    Hydra writes anything."""
    try:
        return [argv[0], *resume_overrides(search_multirun(quote_numeric_choices(argv[1:])))]
    except UserError as err:
        report(f"error: {err}")
        sys.exit(1)


def compose_train(
    conf_dir: Path, overrides: Sequence[str], *, with_hydra: bool = False, **paths: Path | str
) -> DictConfig:
    """The config `python train.py OVERRIDES` would see, for benches and tests that start no Hydra job.

    Each keyword of `paths` sets that `paths.*` key (e.g. output_dir, which a Hydra run would otherwise set);
    `with_hydra` keeps the `hydra` node (its launcher, sweeper and search space) in the config.
    """
    resolvers.register()  # what train.py's entry registers before Hydra composes (tunelab.entry)
    with initialize_config_dir(config_dir=str(conf_dir), **VERSION_BASE):
        overrides = resume_overrides(quote_numeric_choices(overrides))
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=with_hydra)
    with open_dict(cfg):
        for key, value in paths.items():
            cfg.paths[key] = str(value)
    return cfg
