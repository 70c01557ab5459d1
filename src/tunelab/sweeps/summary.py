"""After a multirun: every job and every configuration (mean ± std over seeds) in tables, the best as a config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from tunelab.sweeps.best import best_config
from tunelab.sweeps.jobs import CONFIRM_PREFIX, split_overrides, sweep_inputs
from tunelab.sweeps.ranking import INCOMPLETE, confirmed_groups, group_rows, mark_front, sort_key
from tunelab.sweeps.tables import (
    REPORT_HEADING,
    confirmed_markdown,
    group_columns,
    job_columns,
    to_csv,
    to_markdown,
)
from tunelab.training.run.run_files import write_text_atomic


def summarize(config: DictConfig, root: Path, report: bool = True) -> None:
    """Write `sweep_summary.csv`, `sweep_groups.csv`, `sweep_summary.md` and `best.yaml` in the sweep root.

    Rows come from each job directory's `.hydra/overrides.yaml` and `metrics.json` (written by every
    job, failed ones included). Overrides with the same value in every job are the sweep's constants;
    the others are its parameters, one column each. Jobs whose parameters differ only in `seed` (or
    not at all: a parameter set Optuna proposed twice) form one group, with the mean and std of every
    metric over its finished jobs; groups are ranked by the mean of `optimized_metric`, best first (see
    `direction`). Pruned and failed jobs are listed below the ranking. Jobs of a confirmation phase
    (CONFIRM_PREFIX) are ranked apart, in `sweep_confirmed.csv`, by their mean over seeds, beside the
    configuration's rank in the search; best.yaml is then the best confirmed mean. `report`: end
    sweep_summary.md with the search report (tunelab.sweeps.report). When every job failed, it prints
    one line and exits with status 1.
    """
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
    if report:
        markdown += "\n" + search_report(config, root, searched, objectives, signs)
    write_text_atomic(root / "sweep_summary.md", markdown)
    best = confirmed[0] if confirmed else groups[0] if groups else None
    if best and sort_key(best, metric, sign)[0] == 0:  # finished, with a finite metric
        write_text_atomic(root / "best.yaml", best_config(best, metric, root, config.hydra.job.config_name))
    elif best and best["status"] == INCOMPLETE:
        print("warning: no configuration finished all of its jobs, so no best.yaml", file=sys.stderr)
    elif any(r["status"] == "ok" for r in rows):
        print(f"warning: no finished job logged {metric} (optimized_metric), so no best.yaml", file=sys.stderr)
    elif all(r["status"] == "failed" for r in rows):  # the sweep as a whole failed: so says its exit status
        first = next((r["error"] for r in rows if r.get("error")), "no metrics.json")
        print(f"error: all {len(rows)} jobs of the sweep failed, the first with: {first}", file=sys.stderr)
        sys.exit(1)


def search_report(
    config: DictConfig, root: Path, rows: list[dict[str, Any]], objectives: list[str], signs: list[int]
) -> str:
    """The search report (tunelab.sweeps.report) for the summary's end; a note instead when it cannot be made, since
    the tables above are what a sweep must not lose."""
    try:
        from tunelab.sweeps.report import write_report
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
