"""`resume=<run dir>`: compose the run's own overrides again, and rewrite its records only once it continues.

Hydra knows nothing of resuming: left alone it would compose the defaults (not the run's config) and
overwrite `.hydra/` before the task could refuse the checkpoint. So the command line is expanded
before Hydra sees it, Hydra is told not to write `.hydra/`, and the task writes it once the resumed
run has passed its checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml
from hydra._internal.utils import get_args_parser  # Hydra's own command-line parser: which flags take a value
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from tunelab.errors import UserError
from tunelab.training.run.run_files import write_text_atomic

KEY = "resume"
HYDRA_SUBDIR = ".hydra"
# The run dir is already named by `resume` (conf/hydra/default.yaml); Hydra's own copy of `.hydra/` is
# written by record_resumed_config once the run continues.
HOLD_RECORDS = "hydra.output_subdir=null"
# One run, also for a job of a sweep: its saved overrides may name a search config (hparams_search=...) that
# sets hydra.mode=MULTIRUN, which would start a new search instead of continuing this job.
ONE_RUN = "hydra.mode=RUN"


def override_key(arg: str) -> str:
    """`+a.b=1` -> `a.b`; `~a` -> `a`: what an override sets, whatever its prefix."""
    return arg.lstrip("~+").partition("=")[0]


def split_flags(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """A command line as Hydra's flags (each with its value: `--cfg job`) and its overrides, each in order."""
    options = {name: action for action in get_args_parser()._actions for name in action.option_strings}
    flags: list[str] = []
    overrides: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        action = options.get(arg) if arg.startswith("-") else None
        (flags if arg.startswith("-") else overrides).append(arg)
        if action is None or not rest:
            continue
        if action.nargs is None or (action.nargs == "?" and rest[0] in action.choices):  # `--info` may take one
            flags.append(rest.pop(0))
    return flags, overrides


def resume_overrides(args: Sequence[str]) -> list[str]:
    """The run's saved overrides, less those `args` set again, then `args`: the resumed run's command line, one
    run in the run dir (a job of a sweep or search continues as that one job, not as a new sweep). Hydra's
    flags (`--cfg job`) come last, so that the overrides stay one list, as Hydra's parser needs them.

    Unchanged when `args` holds no `resume=` or starts a multirun. Raises UserError, naming the
    key, when the run dir holds nothing to continue from.
    """
    flags, overrides = split_flags(args)
    given = [a.partition("=")[2] for a in overrides if override_key(a) == KEY and "=" in a]
    if not given or given[-1] in ("", "null") or {"-m", "--multirun"} & set(flags):
        return list(args)
    run_dir = Path(given[-1])
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise UserError(f"resume: {run_dir} holds no checkpoints/last.ckpt to continue from")
    saved_file = run_dir / HYDRA_SUBDIR / "overrides.yaml"
    try:
        saved = [str(o) for o in yaml.safe_load(saved_file.read_text()) or []]
    except (OSError, yaml.YAMLError) as err:
        raise UserError(f"resume: {saved_file} cannot be read ({err}); is {run_dir} a run dir of train.py?") from err
    new_keys = {override_key(a) for a in overrides}
    return [*(o for o in saved if override_key(o) not in new_keys), *overrides, HOLD_RECORDS, ONE_RUN, *flags]


def record_resumed_config(cfg: DictConfig) -> None:
    """Write `.hydra/` as Hydra would have: the resumed run's config, Hydra's config and the overrides."""
    hydra_cfg = HydraConfig.get()
    folder = Path(hydra_cfg.runtime.output_dir) / HYDRA_SUBDIR
    write_text_atomic(folder / "config.yaml", OmegaConf.to_yaml(cfg))
    write_text_atomic(folder / "hydra.yaml", OmegaConf.to_yaml({"hydra": hydra_cfg}))
    write_text_atomic(folder / "overrides.yaml", OmegaConf.to_yaml(hydra_cfg.overrides.task))
