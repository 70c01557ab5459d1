"""After a multirun: every job and every configuration (mean ± std over seeds) in tables, the best as a config."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

import yaml
from hydra.core.global_hydra import GlobalHydra
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from tunelab.training.hydra_hooks.output_check import output_root
from tunelab.training.run.run_files import write_text_atomic

# Overrides that describe the machine, not the experiment: left out of the table and of best.yaml.
_LOCAL_PREFIXES = ("paths.", "hydra.", "hparams_search")
# Job dirs of the Optuna sweeper's confirmation phase (confirm_<trial>_seed<seed>): the search's best
# configurations run again on several seeds; ranked apart from the search, by their mean.
CONFIRM_PREFIX = "confirm_"
REPORT_HEADING = "## Search report"  # sweep_summary.md ends with the search report (tunelab.report) under it
# Groups that are no part of a recipe: Hydra's own, the search that found it (best.yaml keeps what it
# set) and the machine's paths.
_NOT_RECIPE = ("hydra", "hparams_search", "paths")


class SweepSummary(Callback):
    """At the end of a multirun, write `sweep_summary.csv`, `sweep_groups.csv`, `sweep_summary.md` and
    `best.yaml` in the sweep root.

    Rows come from each job directory's `.hydra/overrides.yaml` and `metrics.json` (written by every
    job, failed ones included). Overrides with the same value in every job are the sweep's constants;
    the others are its parameters, one column each. Jobs whose parameters differ only in `seed` (or
    not at all: a parameter set Optuna proposed twice) form one group, with the mean and std of every
    metric over its finished jobs; groups are ranked by the mean of `optimized_metric`, best first (see `direction`).
    Pruned and failed jobs are listed below the ranking. Jobs of a confirmation phase (CONFIRM_PREFIX)
    are ranked apart, in `sweep_confirmed.csv`, by their mean over seeds, beside the configuration's
    rank in the search; best.yaml is then the best confirmed mean. With several sweep processes on one sweep
    dir (Optuna workers), each rewrites the files when it ends, one at a time, the last with every
    job. When every job failed, it prints one line and exits with status 1.
    """

    def __init__(self, report: bool = True) -> None:
        self.report = report  # end sweep_summary.md with the search report (tunelab.report)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = output_root(config, "sweep")
        # Workers sharing the sweep dir take turns, so the one that reads the job dirs last also writes last.
        with open(root / ".sweep_summary.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.summarize(config, root)

    def summarize(self, config: DictConfig, root: Path) -> None:
        rows, objectives, signs = sweep_inputs(config, root)
        metric, sign = objectives[0], signs[0]  # the ranking's; several objectives also mark their Pareto front
        rows.sort(key=lambda r: sort_key(r, metric, sign))
        if not rows:
            return
        params, constants = split_overrides(rows)
        searched = [r for r in rows if not r["job"].startswith(CONFIRM_PREFIX)]
        confirming = [r for r in rows if r["job"].startswith(CONFIRM_PREFIX)]
        groups = sorted(group_rows(searched, params), key=lambda g: sort_key(g, metric, sign))
        if len(objectives) > 1:
            mark_front(groups, objectives, signs)
        confirmed = confirmed_groups(confirming, groups, params, metric, sign)
        write_text_atomic(root / "sweep_summary.csv", to_csv(rows, job_columns(rows, params)))
        write_text_atomic(root / "sweep_groups.csv", to_csv(groups, group_columns(groups, params)))
        if confirmed:
            columns = ["search rank", "confirmed rank", *group_columns(confirmed, params)]
            write_text_atomic(root / "sweep_confirmed.csv", to_csv(confirmed, columns))
        markdown = to_markdown(rows, groups, params, constants, metric, sign)
        markdown += confirmed_markdown(confirmed, params, metric)
        if self.report:
            markdown += "\n" + search_report(config, root, searched, objectives, signs)
        write_text_atomic(root / "sweep_summary.md", markdown)
        best = confirmed[0] if confirmed else groups[0] if groups else None
        if best and sort_key(best, metric, sign)[0] == 0:  # finished, with a finite metric
            write_text_atomic(root / "best.yaml", best_config(best, metric, root, config.hydra.job.config_name))
        elif any(r["status"] == "ok" for r in rows):
            print(f"warning: no finished job logged {metric} (optimized_metric), so no best.yaml", file=sys.stderr)
        elif all(r["status"] == "failed" for r in rows):  # the sweep as a whole failed: so says its exit status
            first = next((r["error"] for r in rows if r.get("error")), "no metrics.json")
            print(f"error: all {len(rows)} jobs of the sweep failed, the first with: {first}", file=sys.stderr)
            sys.exit(1)


def sweep_inputs(config: DictConfig, root: Path) -> tuple[list[dict[str, Any]], list[str], list[int]]:
    """The sweep's job rows, its objectives (`optimized_metric`, one or several) and each one's sign."""
    rows = [job_row(d) for d in job_dirs(root)]
    # optimized_metric null: the task's own, which each job records
    given = config.get("optimized_metric") or next((r["_metric"] for r in rows if r["_metric"]), "val/loss")
    objectives = [given] if isinstance(given, str) else list(given)
    return rows, objectives, objective_signs(config, objectives)


def search_report(
    config: DictConfig, root: Path, rows: list[dict[str, Any]], objectives: list[str], signs: list[int]
) -> str:
    """The search report (tunelab.report) for the summary's end; a note instead when it cannot be made, since
    the tables above are what a sweep must not lose."""
    try:
        from tunelab.report import write_report
    except ImportError as err:  # optuna and matplotlib come with the `sweep` extra
        return f"{REPORT_HEADING}\n\nNot made: {err.name} is not installed (pip install tunelab[sweep]).\n"
    try:
        return write_report(root, config, rows, objectives, signs)
    except Exception as err:  # a report that fails must not lose the tables: say so, keep them
        print(f"warning: no search report ({type(err).__name__}: {err})", file=sys.stderr)
        return f"{REPORT_HEADING}\n\nNot made: {type(err).__name__}: {err}\n"


def replace_report(root: Path, markdown: str) -> None:
    """Put a new search report at the end of sweep_summary.md, in place of the one it has."""
    summary = root / "sweep_summary.md"
    if summary.is_file():
        tables = summary.read_text().split(f"\n{REPORT_HEADING}\n")[0].rstrip("\n")
        write_text_atomic(summary, f"{tables}\n\n{markdown}")


def job_dirs(root: Path) -> list[Path]:
    """Job dirs in job number order (their names start with it); the confirmation phase's last."""
    dirs = [p.parent.parent for p in root.glob("*/.hydra/overrides.yaml")]
    return sorted(dirs, key=lambda d: job_order(d.name))


def job_order(name: str) -> tuple[float, str]:
    number = name.split("_")[0]
    return int(number) if number.isdigit() else math.inf, name


def job_row(job_dir: Path) -> dict[str, Any]:
    overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    overrides = [o for o in overrides if not o.lstrip("+~").startswith(_LOCAL_PREFIXES)]
    row: dict[str, Any] = {"job": job_dir.name, "overrides": " ".join(overrides), "status": "missing", "_metric": None}
    summary_file = job_dir / "metrics.json"
    if summary_file.is_file():
        summary = json.loads(summary_file.read_text())
        row.update(
            status=summary.get("status", "missing"),
            epochs=summary.get("epochs"),
            seconds=summary.get("seconds"),
            error=summary.get("error", ""),
        )
        row.update(summary.get("metrics", {}))
        row["_metric"] = summary.get("optimized_metric")
    row["_values"] = dict(o.lstrip("+").partition("=")[::2] for o in overrides)
    return row


def split_overrides(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    """The override keys whose value differs between jobs (in command-line order), and the constant ones."""
    keys = list(dict.fromkeys(k for r in rows for k in r["_values"]))
    params = [k for k in keys if len({r["_values"].get(k) for r in rows}) > 1]
    constants = {k: rows[0]["_values"][k] for k in keys if k not in params}
    return params, constants


def group_rows(rows: list[dict[str, Any]], params: list[str]) -> list[dict[str, Any]]:
    """One row per configuration (the parameters but `seed`): mean and std of each metric over its finished jobs."""
    by_config: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        by_config.setdefault(config_key(row["_values"], params), []).append(row)
    groups = []
    for jobs in by_config.values():
        done = [j for j in jobs if j["status"] == "ok"]
        group: dict[str, Any] = {k: jobs[0]["_values"].get(k) for k in params if k != "seed"}
        group.update(jobs=len(jobs), finished=len(done), status="ok" if done else jobs[0]["status"])
        for name in metric_names(done):
            values = [j[name] for j in done if isinstance(j.get(name), int | float)]
            group[name] = statistics.fmean(values)
            group[f"{name} std"] = statistics.stdev(values) if len(values) > 1 else None
        group["_jobs"] = jobs
        groups.append(group)
    return groups


def confirmed_groups(
    rows: list[dict[str, Any]], searched: list[dict[str, Any]], params: list[str], metric: str, sign: int
) -> list[dict[str, Any]]:
    """The confirmation jobs' configurations, ranked by their mean over seeds, each with its rank in the search."""
    search_rank = {config_key(g, params): i for i, g in enumerate(searched, 1) if sort_key(g, metric, sign)[0] == 0}
    groups = sorted(group_rows(rows, params), key=lambda g: sort_key(g, metric, sign))
    for rank, group in enumerate(groups, 1):
        group["search rank"] = search_rank.get(config_key(group, params))
        group["confirmed rank"] = rank if sort_key(group, metric, sign)[0] == 0 else None
    return groups


def config_key(group: dict[str, Any], params: list[str]) -> tuple:
    return tuple(group.get(k) for k in params if k != "seed")


def objective_signs(config: DictConfig, objectives: list[str]) -> list[int]:
    """-1 for each objective the sweeper's `direction` maximises, 1 for the others; without a direction (a grid
    sweep), accuracies are maximised and everything else (losses, errors, sizes, times) minimised."""
    given = OmegaConf.select(config, "hydra.sweeper.direction", default=None)
    listed = [str(d) for d in given] if OmegaConf.is_list(given) else [str(given)] if given is not None else []
    signs = []
    for i, metric in enumerate(objectives):
        guess = "maximize" if metric.rpartition("/")[2].startswith("acc") else "minimize"
        signs.append(-1 if (listed[i] if i < len(listed) else guess) == "maximize" else 1)
    return signs


def mark_front(groups: list[dict[str, Any]], objectives: list[str], signs: list[int]) -> None:
    """Set `front` on the finished groups that no other finished group beats on every objective (the Pareto front)."""
    done = [g for g in groups if g["status"] == "ok" and all(isinstance(g.get(m), int | float) for m in objectives)]
    points = [[sign * g[m] for m, sign in zip(objectives, signs, strict=True)] for g in done]
    for group, point in zip(done, points, strict=True):
        dominated = any(all(q <= p for q, p in zip(other, point, strict=True)) and other != point for other in points)
        group["front"] = "yes" if not dominated else ""


def sort_key(row: dict[str, Any], metric: str, sign: int = 1) -> tuple[int, float]:
    """Finished rows first, then pruned ones, each best first (`sign` -1: higher is better); then the rest."""
    value = row.get(metric)
    rank = {"ok": 0, "pruned": 1}.get(row["status"], 2)
    if rank < 2 and isinstance(value, int | float) and math.isfinite(value):
        return rank, sign * value
    return 2, math.inf


def metric_names(rows: list[dict[str, Any]]) -> list[str]:
    prefixes = ("val/", "test/", "model/", "time/")
    return sorted({k for r in rows for k in r if k.startswith(prefixes) and not k.endswith(" std")})


def job_columns(rows: list[dict[str, Any]], params: list[str]) -> list[str]:
    return ["job", *params, "status", *metric_names(rows), "epochs", "seconds", "error", "overrides"]


def group_columns(groups: list[dict[str, Any]], params: list[str]) -> list[str]:
    stats = [c for name in metric_names(groups) for c in (name, f"{name} std")]
    front = ["front"] if any("front" in g for g in groups) else []
    return [*(p for p in params if p != "seed"), "jobs", "finished", *front, *stats]


def to_csv(rows: list[dict[str, Any]], cols: list[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({**r, **r.get("_values", {})} for r in rows)  # job rows: their swept values as columns
    return out.getvalue()


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], lines: list[list[str]]) -> list[str]:
    rule = "|" + " --- |" * len(header)
    return ["| " + " | ".join(header) + " |", rule, *("| " + " | ".join(cells) + " |" for cells in lines), ""]


def mean_std(group: dict[str, Any], name: str) -> str:
    std = group.get(f"{name} std")
    return cell(group.get(name)) + ("" if std is None else f" ± {std:.2g}")


def to_markdown(
    rows: list[dict[str, Any]], groups: list[dict[str, Any]], params: list[str], constants: dict, metric: str, sign: int
) -> str:
    """Constants once, then the finished configurations ranked (mean ± std over seeds), then pruned and failed jobs."""
    out = [f"Sweep of {len(rows)} jobs, ranked by {metric} ({'lower' if sign > 0 else 'higher'} is better).", ""]
    if constants:
        out += ["Every job: `" + " ".join(f"{k}={v}" for k, v in constants.items()) + "`", ""]
    ranked = [g for g in groups if g["status"] == "ok"]
    front = any("front" in g for g in ranked)
    if front:
        out += ["`front`: yes for the configurations no other one beats on every objective (the Pareto front).", ""]
    if ranked:
        config, names = [p for p in params if p != "seed"], metric_names(ranked)
        jobs = "jobs (finished)" if any(len(g["_jobs"]) > 1 for g in ranked) else "job"
        marks = [[g.get("front", "")] if front else [] for g in ranked]
        lines = [
            [*(cell(g.get(p)) for p in config), jobs_cell(g), *mark, *(mean_std(g, n) for n in names)]
            for g, mark in zip(ranked, marks, strict=True)
        ]
        out += table([*config, jobs, *(["front"] if front else []), *names], lines)
    rest = [r for r in rows if r["status"] != "ok"]
    if rest:
        cols = ["status", metric, "epochs", "error"]
        lines = [
            [r["job"], *(cell(r["_values"].get(p)) for p in params), *(cell(r.get(c)) for c in cols)] for r in rest
        ]
        out += [
            "Pruned (with the value they were pruned on) and failed jobs:",
            "",
            *table(["job", *params, *cols], lines),
        ]
    return "\n".join(out)


def confirmed_markdown(groups: list[dict[str, Any]], params: list[str], metric: str) -> str:
    """The confirmation phase: each configuration's search rank, its mean ± std over seeds and its rank by that."""
    if not groups:
        return ""
    seeds = sorted({str(j["_values"].get("seed")) for g in groups for j in g["_jobs"]}, key=lambda s: (len(s), s))
    config = [p for p in params if p != "seed"]
    lines = [
        [*(cell(g.get(p)) for p in config), cell(g["search rank"]), f"{g['finished']} of {len(g['_jobs'])}",
         mean_std(g, metric), cell(g["confirmed rank"])]
        for g in groups
    ]  # fmt: skip
    header = [*config, "search rank", "jobs (finished)", f"{metric} over seeds", "confirmed rank"]
    intro = f"\nConfirmed on seeds {', '.join(seeds)}: the search's best configurations run again; best.yaml is the"
    intro += " first."
    return "\n".join([intro, "", *table(header, lines)])


def jobs_cell(group: dict[str, Any]) -> str:
    """The job dir of a single-job configuration, else how many of its jobs finished."""
    jobs = group["_jobs"]
    return jobs[0]["job"] if len(jobs) == 1 else f"{group['finished']} of {len(jobs)}"


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
