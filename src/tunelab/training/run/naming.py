"""What a run is called in TensorBoard's run list and in MLflow: what sets it apart from its neighbours.

A job of a sweep is named by the overrides its sweep varies (`optimizer=adam,scheduler=cosine`, with
`seed=1` when seeds are swept); a single run by its experiment (or its data and model) and the
overrides it was started with. The loggers take the name through `${run_name:}` (conf/logger): the
TensorBoard event files go to `<run dir>/tensorboard/<name>/`, whose path TensorBoard shows as the
run's name; MLflow's run name adds `${run_dir_name:}` (the run dir below the task's log folder), which
makes it unique and says where the run's files are. A resumed run keeps its name.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tunelab.training.run.resume import override_key
from tunelab.training.run.sweep_resume import in_multirun

# Overrides that say where and how a run is recorded or shown, not what it trains: no part of its name
# (nor are a single run's data and model choices, which its name starts with).
NOT_NAMED = {
    "experiment",
    "data",
    "model",
    "logger",
    "callbacks",
    "debug",
    "hparams_search",
    "resume",
    "ckpt_path",
    "retry_failed",
}
NOT_NAMED_PREFIXES = ("hydra.", "paths.", "logger.", "callbacks.", "trainer.enable_", "trainer.log_every_n_steps")
LONGEST = 120  # characters; longer names end in a digest of the whole (a file name holds at most 255 bytes)


def varied_overrides() -> list[str]:
    """This sweep job's overrides whose key the sweep varies (none outside a sweep), in the job's order.

    Varied keys are read from the sweep's `multirun.yaml`, which the sweeper writes before any job
    starts: the command-line overrides with several values (`optimizer=sgd,adam`) and
    `hydra.sweeper.params`; and any key this job got beyond the command line's fixed ones (an Optuna
    `custom_search_space` draws keys that no config lists; a confirmation job its seed).
    """
    if not in_multirun():
        return []
    sweep_file = Path(HydraConfig.get().sweep.dir) / "multirun.yaml"
    if not sweep_file.is_file():
        return []
    sweep = OmegaConf.load(sweep_file).hydra
    parser = OverridesParser.create()
    given = parser.parse_overrides(list(sweep.overrides.task))
    swept = {o.get_key_element() for o in given if o.is_sweep_override()}
    swept |= {str(k) for k in (sweep.sweeper.get("params") or {})}
    fixed = {o.get_key_element() for o in given if not o.is_sweep_override()}
    job = list(HydraConfig.get().overrides.task)
    keys = [o.get_key_element() for o in parser.parse_overrides(job)]
    return [
        text
        for text, key in zip(job, keys, strict=True)
        if (key in swept or key not in fixed) and not key.lstrip("+~").startswith("hydra.")
    ]


def varied_keys() -> set[str]:
    """The hyperparameter keys (`optimizer/lr`) of this sweep job's varied overrides."""
    return {override_key(o).replace(".", "/") for o in varied_overrides()}


def run_name() -> str:
    """The run's name: a sweep job's varied overrides; a single run's experiment (or data and model) and overrides."""
    if HydraConfig.initialized():  # a resumed run (or a cut-off sweep job) keeps the name its curves have
        existing = [
            p.name for p in (Path(HydraConfig.get().runtime.output_dir) / "tensorboard").glob("*") if p.is_dir()
        ]
        if len(existing) == 1:
            return existing[0]
    if in_multirun():
        parts = varied_overrides() or [f"job_{HydraConfig.get().job.num}"]
    elif HydraConfig.initialized():
        hydra = HydraConfig.get()
        choices = hydra.runtime.choices
        base = choices.get("experiment") or f"{choices.get('data')}-{choices.get('model')}"
        parts = [base, *(o for o in hydra.overrides.task if named(o))]
    else:  # a config composed outside a Hydra app (tests, notebooks)
        parts = ["run"]
    name = ",".join(short(p.lstrip("+~")) for p in parts).replace("/", "_").replace(" ", "")
    return name if len(name) <= LONGEST else f"{name[: LONGEST - 9]}-{digest(name)}"


def short(override: str) -> str:
    """`optimizer.lr=0.0009458439114187642` -> `optimizer.lr=0.0009458`: an Optuna draw, readable in a name."""
    key, _, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    return override if value.lstrip("-").isdigit() else f"{key}={number:.4g}"


def named(override: str) -> bool:
    key = override_key(override)
    return key not in NOT_NAMED and not key.startswith(NOT_NAMED_PREFIXES)


def digest(text: object) -> str:
    """8 hex digits naming `text` (a job's overrides, a long run name) in a directory name."""
    return hashlib.sha256(str(text).encode()).hexdigest()[:8]


def run_dir_name() -> str:
    """The run dir below the task's log folder: `<run id>`, or `<sweep id>/<job dir>` for a sweep job."""
    if not HydraConfig.initialized():
        return ""
    output = Path(HydraConfig.get().runtime.output_dir)
    return f"{output.parent.name}/{output.name}" if in_multirun() else output.name
