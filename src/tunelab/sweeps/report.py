"""What a search found, in pictures: parameter importances and Optuna's plots of the search.

Written after every multirun (tunelab.sweeps.summary) and on demand for an existing sweep dir
(`python -m tunelab.report`), into `<sweep dir>/report/`: PNGs from Optuna's matplotlib backend
(optimisation history, parallel coordinates, importances, slices, the intermediate values of pruned and
finished trials; the Pareto front when several objectives are searched), `importances.csv`, and
`report.md`, which sweep_summary.md ends with. The same figures and table go to TensorBoard as the run
`report` of the sweep dir, so `tensorboard --logdir <sweep dir>` shows them beside the jobs' runs.

The study is the Optuna sweeper's own (its storage, from the sweep's multirun.yaml); the jobs of a grid
sweep, or of a search whose study lived in memory, become an in-memory study (no intermediate values):
a swept key whose values are all numbers is a numeric parameter, on a log scale where the sweep said
`tag(log, ...)`; any other one is categorical.

The seed is never a parameter whose importance is measured: a sweep varies it to see the spread.

Importances: PED-ANOVA by default. It asks what a tuner asks (which parameters decide whether a
trial lands among the best, not which explain the variance over the whole space, as fANOVA does),
needs only numpy, and is what optuna-dashboard shows, so the report and the dashboard agree. It
compares the best 10% of the finished trials with all of them; Optuna advises at least 5 trials in that
top set, and the report says when there are fewer. `--importance fanova` (Optuna's own default; needs
scikit-learn) gives the global view.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from tunelab.errors import UserError
from tunelab.sweeps.jobs import split_overrides
from tunelab.sweeps.tables import REPORT_HEADING
from tunelab.training.run.run_files import write_text_atomic

log = logging.getLogger(__name__)

FOLDER = "report"
STATES = {"ok": optuna.trial.TrialState.COMPLETE, "pruned": optuna.trial.TrialState.PRUNED}
NOT_A_PARAMETER = "seed"  # swept to see the spread: never ranked among the parameters that matter
TOP_QUANTILE, ADVISED_TOP = 0.1, 5  # PED-ANOVA's top set (Optuna's default), and the trials Optuna advises in it


def write_report(
    root: Path,
    config: DictConfig,
    rows: list[dict[str, Any]],
    objectives: list[str],
    signs: list[int],
    importance: str = "ped-anova",
) -> str:
    """Write `<root>/report/` for the sweep's study; return its markdown section (REPORT_HEADING and after)."""
    study = sweep_study(root, config) or grid_study(rows, objectives, signs, log_scaled(config))
    if not study.trials:
        raise UserError(f"{root}: no trial or job of this sweep has started yet")
    folder = root / FOLDER
    folder.mkdir(exist_ok=True)
    names = objectives[: len(study.directions)]
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    lines = [REPORT_HEADING, "", f"{len(study.trials)} trials, {len(done)} finished; figures in `{FOLDER}/`.", ""]
    importances = param_importances(study, names, importance) if len(done) > 1 else {}
    if importances:
        lines += importance_table(importances, importance)
        top = math.ceil(TOP_QUANTILE * len(done))
        if importance == "ped-anova" and top < ADVISED_TOP:
            lines += [
                f"Few trials for PED-ANOVA: its top {TOP_QUANTILE:.0%} of {len(done)} finished trials holds {top} "
                f"(Optuna advises at least {ADVISED_TOP}, so {math.ceil(ADVISED_TOP / TOP_QUANTILE)} trials), so "
                "these importances are rough; `python -m tunelab.report <sweep dir> --importance fanova` "
                "gives the view over the whole space.",
                "",
            ]
        write_text_atomic(folder / "importances.csv", importance_csv(importances))
    else:
        need = f"Importances need at least 2 finished trials and a searched parameter (the {NOT_A_PARAMETER} is none)."
        lines += [need, ""]
    figures, not_drawn = draw(study, names, importance)
    for name, figure in figures.items():
        figure.savefig(folder / f"{name}.png", dpi=90, bbox_inches="tight")
    lines += [f"![{name}]({FOLDER}/{name}.png)" for name in figures]
    lines += [""] + [f"Not drawn: {why}" for why in not_drawn]
    markdown = "\n".join(lines).rstrip() + "\n"
    write_text_atomic(folder / "report.md", markdown)
    to_tensorboard(folder, figures, markdown, len(done))  # and closes the figures
    return markdown


def sweep_study(root: Path, config: DictConfig) -> optuna.Study | None:
    """The Optuna sweeper's study of this sweep, or None (a grid sweep, or a study kept in memory)."""
    with_root = OmegaConf.create(OmegaConf.to_container(config))  # a writable copy (Hydra's is read-only)
    with_root.hydra.sweep = {"dir": str(root)}  # where the storage may be: ${hydra.sweep.dir}/optuna.journal
    sweeper = OmegaConf.select(with_root, "hydra.sweeper", default=None)
    if sweeper is None or "OptunaSweeper" not in str(sweeper.get("_target_")) or not sweeper.get("storage"):
        return None
    from tunelab.training.optuna_storage import connect, study_name

    storage = connect(str(sweeper.storage))
    name = study_name(sweeper.get("study_name"), root)
    return optuna.load_study(study_name=name, storage=storage)


def log_scaled(config: DictConfig) -> set[str]:
    """The swept keys the sweep put on a log scale (`tag(log, ...)`), on its command line or in hydra.sweeper.params."""
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    lines = [f"{k}={v}" for k, v in params.items()] + list(OmegaConf.select(config, "hydra.overrides.task") or [])
    parser, found = OverridesParser.create(), set()
    for line in lines:
        try:
            (override,) = parser.parse_overrides([line])
        except Exception:  # Hydra's parser raises its own errors; a sweep that ran parsed them already
            continue
        if override.is_sweep_override() and "log" in getattr(override.value(), "tags", ()):
            found.add(override.get_key_element().lstrip("+~"))
    return found


def parameter(values: list[str], log: bool) -> tuple[optuna.distributions.BaseDistribution, Callable[[str], Any]]:
    """The distribution of a swept key's values (as the job dirs' overrides write them), and how to read one."""
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        numbers = []
    if not numbers or not all(math.isfinite(n) for n in numbers):
        return optuna.distributions.CategoricalDistribution(sorted(set(values))), str
    low, high = min(numbers), max(numbers)
    log = log and low > 0
    if all(re.fullmatch(r"[-+]?\d+", v) for v in values):
        return optuna.distributions.IntDistribution(int(low), int(high), log=log), int
    return optuna.distributions.FloatDistribution(low, high, log=log), float


def grid_study(
    rows: list[dict[str, Any]], objectives: list[str], signs: list[int], log: set[str] = frozenset()
) -> optuna.Study:
    """The jobs of a sweep without a study as one: their swept keys as numeric parameters (on a log scale for
    the keys in `log`) where every value is a number, else categorical."""
    keys, _ = split_overrides(rows)
    given = {k: [r["_values"][k] for r in rows if r["_values"].get(k) is not None] for k in keys}
    parameters = {k: parameter(values, k in log) for k, values in given.items() if values}
    directions = ["minimize" if sign > 0 else "maximize" for sign in signs]
    study = optuna.create_study(directions=directions)
    for row in rows:
        values = [row.get(m) for m in objectives]
        state = STATES.get(row["status"], optuna.trial.TrialState.FAIL)
        finite = all(isinstance(v, int | float) for v in values)
        if state == optuna.trial.TrialState.COMPLETE and not finite:
            state = optuna.trial.TrialState.FAIL
        mine = {k: p for k, p in parameters.items() if row["_values"].get(k) is not None}
        study.add_trial(
            optuna.trial.create_trial(
                params={k: read(row["_values"][k]) for k, (_, read) in mine.items()},
                distributions={k: distribution for k, (distribution, _) in mine.items()},
                values=values if state == optuna.trial.TrialState.COMPLETE else None,
                state=state,
            )
        )
    return study


def param_importances(study: optuna.Study, names: list[str], method: str) -> dict[str, dict[str, float]]:
    """Each objective's parameter importances (summing to 1), most important first."""
    out = {}
    params = searched(study)
    if not params:
        return out
    for i, name in enumerate(names):
        sign = -1 if study.directions[i] == optuna.study.StudyDirection.MAXIMIZE else 1
        with warnings.catch_warnings():  # PED-ANOVA warns whenever given a target; the sign makes lower better
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                study, evaluator=evaluator(method), params=params, target=lambda t, i=i, sign=sign: sign * t.values[i]
            )
        if found:
            out[name] = {k: float(v) for k, v in found.items()}
    return out


def searched(study: optuna.Study) -> list[str]:
    """The parameters of the study's finished trials whose importance is measured: all but the seed."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return [p for p in dict.fromkeys(k for t in done for k in t.params) if p != NOT_A_PARAMETER]


def evaluator(method: str) -> optuna.importance.BaseImportanceEvaluator:
    if method == "ped-anova":
        return optuna.importance.PedAnovaImportanceEvaluator()
    if method == "fanova":
        return optuna.importance.FanovaImportanceEvaluator(seed=0)  # seeded: the same study, the same numbers
    raise UserError(f"--importance must be ped-anova or fanova; got {method}")


def importance_table(importances: dict[str, dict[str, float]], method: str) -> list[str]:
    objectives = list(importances)
    params = list(importances[objectives[0]])
    lines = [f"Parameter importances ({method}; each column sums to 1):", ""]
    lines += ["| parameter | " + " | ".join(objectives) + " |", "|" + " --- |" * (len(objectives) + 1)]
    lines += [f"| {p} | " + " | ".join(f"{importances[o].get(p, 0.0):.3f}" for o in objectives) + " |" for p in params]
    return [*lines, ""]


def importance_csv(importances: dict[str, dict[str, float]]) -> str:
    rows = ["objective,parameter,importance"]
    rows += [f"{o},{p},{v}" for o, values in importances.items() for p, v in values.items()]
    return "\n".join(rows) + "\n"


def draw(study: optuna.Study, names: list[str], importance: str) -> tuple[dict[str, Any], list[str]]:
    """Optuna's matplotlib figures of the study, by file name; and why each one left out could not be drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from optuna.visualization import matplotlib as plots

    first = names[0]
    target: dict[str, Any] = {"target_name": first}
    if len(names) > 1:  # Optuna's plots need one target: the first objective (the summary's ranking)
        target["target"] = lambda t: t.values[0]
    makers: dict[str, Callable[[], Any]] = {
        "history": lambda: plots.plot_optimization_history(study, **target),
        "parallel_coordinates": lambda: plots.plot_parallel_coordinate(study, **target),
        "importances": lambda: plots.plot_param_importances(
            study, evaluator=evaluator(importance), params=searched(study), **target
        ),
        "slices": lambda: plots.plot_slice(study, **target),
        "intermediate_values": lambda: plots.plot_intermediate_values(study),
    }
    if len(names) > 1:
        makers["pareto_front"] = lambda: plots.plot_pareto_front(study, target_names=names)
    figures, not_drawn = {}, []
    for name, make in makers.items():
        if why := why_not(study, name):
            not_drawn.append(f"{name.replace('_', ' ')} ({why})")
            continue
        with warnings.catch_warnings():  # Optuna marks its matplotlib backend experimental
            warnings.simplefilter("ignore")
            try:
                drawn = make()
            except (ValueError, RuntimeError, TypeError) as err:
                log.warning(f"report: {name} not drawn ({err})")
                not_drawn.append(f"{name.replace('_', ' ')} ({err})")
                continue
        figures[name] = figure_of(drawn)
    return figures, not_drawn


def why_not(study: optuna.Study, name: str) -> str | None:
    """Why the figure `name` has nothing to show for this study, or None when it has."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if name == "intermediate_values":
        reported = any(t.intermediate_values for t in study.get_trials(deepcopy=False))
        return None if reported else "no trial reported any: a grid sweep, or no pruner"
    if name == "importances" and len(done) > 1 and not searched(study):
        return f"no searched parameter but the {NOT_A_PARAMETER}"
    if name in ("importances", "parallel_coordinates"):
        return None if len(done) > 1 and any(t.params for t in done) else "fewer than 2 finished trials"
    if name == "slices":
        return None if any(t.params for t in done) else "no finished trial with parameters"
    return None if done else "no finished trial"


def figure_of(drawn: Any) -> Any:
    """The figure an Optuna plot drew on (it returns Axes, or an array of them)."""
    first = drawn.flat[0] if hasattr(drawn, "flat") else drawn
    return first.get_figure()


def to_tensorboard(folder: Path, figures: dict[str, Any], markdown: str, step: int) -> None:
    """The figures (closed once written) and the report's text as TensorBoard's run `report`, written anew."""
    from torch.utils.tensorboard import SummaryWriter

    for old in folder.glob("events.out.tfevents.*"):
        old.unlink()
    with SummaryWriter(log_dir=str(folder)) as writer:
        for name, figure in figures.items():
            writer.add_figure(f"search/{name}", figure, global_step=step, close=True)
        writer.add_text("search/report", markdown, global_step=step)
