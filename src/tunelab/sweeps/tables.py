"""sweep_summary.csv / sweep_groups.csv / sweep_confirmed.csv and the tables of sweep_summary.md."""

from __future__ import annotations

import contextlib
import csv
import io
from typing import Any

from tunelab.sweeps.ranking import INCOMPLETE, metric_names

REPORT_HEADING = "## Search report"  # sweep_summary.md ends with the search report (tunelab.sweeps.report) under it


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
    """A markdown cell: numbers at 4 significant digits (also a swept value written in full, as an Optuna draw
    is: 0.003924048508734497), whole numbers as they are; the CSVs keep every digit."""
    if isinstance(value, str) and not value.lstrip("+-").isdigit():
        with contextlib.suppress(ValueError):  # text stays text
            value = float(value)
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
    ranked = [g for g in groups if g["status"] in ("ok", INCOMPLETE)]  # sorted: the incomplete ones last
    front = any("front" in g for g in ranked)
    if front:
        out += ["`front`: yes for the configurations no other one beats on every objective (the Pareto front).", ""]
    if any(g["status"] == INCOMPLETE for g in ranked):
        note = "Configurations with a job that did not finish (a diverged seed) rank after every one that"
        out += [f"{note} finished all of its jobs, whatever the mean of the rest.", ""]
    if ranked:
        config = [p for p in params if p != "seed"]
        names = [metric, *(n for n in metric_names(ranked) if n != metric)]  # the ranking's metric first
        jobs = "jobs (finished)" if any(len(g["_jobs"]) > 1 for g in ranked) else "job"
        marks = [[g.get("front", "")] if front else [] for g in ranked]
        lines = [
            [*(cell(g.get(p)) for p in config), jobs_cell(g), *mark, *(mean_std(g, n) for n in names)]
            for g, mark in zip(ranked, marks, strict=True)
        ]
        if ranked[0]["status"] == "ok" and ranked[0].get(metric) is not None:  # the winner, in bold
            lines[0][len(config) + 1 + front] = f"**{lines[0][len(config) + 1 + front]}**"
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
