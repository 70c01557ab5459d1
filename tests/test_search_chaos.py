"""Fault injection (tests/search_chaos.py): workers on one study killed at random moments and started again,
then one clean worker; every invariant of a search must hold after it. A few scenarios in the fast tier, 200 in
the slow one, on a journal file, SQLite and a PostgreSQL server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from search_chaos import Scenario, run

STORAGES = ("journal", "sqlite", "postgres")
SLOW_SCENARIOS = 200


def play(seed: int, storage: str, root: Path, postgres) -> list[str]:
    scenario = Scenario.draw(seed, storage)
    root.mkdir(parents=True)
    if storage == "postgres":
        url = postgres.database()
    else:
        url = f"sqlite:///{root / 'study.db'}" if storage == "sqlite" else str(root / "study.journal")
    return run(scenario, root, url)


@pytest.mark.parametrize(("seed", "storage"), [(25, "journal"), (23, "postgres"), (7, "sqlite")])
def test_a_scenario_keeps_every_invariant(seed, storage, tmp_path, request):
    """Seed 25: two workers on a grid, one killed, confirmation on; 23: two TPE workers both killed within 2 s,
    confirmation on, on PostgreSQL; 7: two random-sampler workers, one killed, a study budget of 2, confirmation
    on, on SQLite."""
    postgres = request.getfixturevalue("postgres") if storage == "postgres" else None
    assert play(seed, storage, tmp_path / "scenario", postgres) == []


@pytest.mark.slow(reason=f"{SLOW_SCENARIOS} fault-injection scenarios, three at a time: about 14 minutes")
def test_two_hundred_scenarios_keep_every_invariant(tmp_path, postgres):
    scenarios = [(seed, STORAGES[seed % len(STORAGES)]) for seed in range(SLOW_SCENARIOS)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        found = list(pool.map(lambda s: play(*s, tmp_path / f"{s[0]}_{s[1]}", postgres), scenarios))
    broken = {f"seed {seed} ({storage})": v for (seed, storage), v in zip(scenarios, found, strict=True) if v}
    per_storage = {s: sum(1 for _, st in scenarios if st == s) for s in STORAGES}
    print(f"\n{len(scenarios)} scenarios {per_storage}, {len(broken)} with violations")
    assert not broken, broken
