"""Ranking a sweep's rows: configurations (mean ± std over seeds), the confirmation phase, the Pareto front."""

from __future__ import annotations

import math
import statistics
from typing import Any

INCOMPLETE = "incomplete"  # a configuration's status when some of its jobs (seeds) finished and some did not


def group_rows(rows: list[dict[str, Any]], params: list[str]) -> list[dict[str, Any]]:
    """One row per configuration (the parameters but `seed`): mean and std of each metric over its finished jobs."""
    by_config: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        by_config.setdefault(config_key(row["_values"], params), []).append(row)
    groups = []
    for jobs in by_config.values():
        done = [j for j in jobs if j["status"] == "ok"]
        group: dict[str, Any] = {k: jobs[0]["_values"].get(k) for k in params if k != "seed"}
        # A configuration counts as finished only when all its jobs did: one that diverged on some seeds ranks
        # after every configuration that finished all of them, whatever the mean of its surviving seeds.
        status = "ok" if len(done) == len(jobs) else INCOMPLETE if done else jobs[0]["status"]
        group.update(jobs=len(jobs), finished=len(done), status=status)
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


def mark_front(groups: list[dict[str, Any]], objectives: list[str], signs: list[int]) -> None:
    """Set `front` on the finished groups that no other finished group beats on every objective (the Pareto front)."""
    done = [g for g in groups if g["status"] == "ok" and all(isinstance(g.get(m), int | float) for m in objectives)]
    points = [[sign * g[m] for m, sign in zip(objectives, signs, strict=True)] for g in done]
    for group, point in zip(done, points, strict=True):
        dominated = any(all(q <= p for q, p in zip(other, point, strict=True)) and other != point for other in points)
        group["front"] = "yes" if not dominated else ""


def sort_key(row: dict[str, Any], metric: str, sign: int = 1) -> tuple[int, float]:
    """Finished rows first, then configurations with some jobs unfinished, then pruned ones, each best first
    (`sign` -1: higher is better); then the rest."""
    value = row.get(metric)
    rank = {"ok": 0, INCOMPLETE: 1, "pruned": 2}.get(row["status"], 3)
    if rank < 3 and isinstance(value, int | float) and math.isfinite(value):
        return rank, sign * value
    return 3, math.inf


def metric_names(rows: list[dict[str, Any]]) -> list[str]:
    prefixes = ("val/", "test/", "model/", "time/")
    return sorted({k for r in rows for k in r if k.startswith(prefixes) and not k.endswith(" std")})
