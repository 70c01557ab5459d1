"""bench/images.py: the Fashion-MNIST table of docs/results.md is the one rendered from the committed CSV."""

from __future__ import annotations

from conftest import ROOT, doc_block, load_bench

bench = load_bench("images")
driver = load_bench("driver")
CSV = ROOT / "bench" / "results" / "images.csv"


def test_the_doc_table_is_the_one_rendered_from_the_committed_csv():
    assert doc_block(bench.BENCH) == bench.table(driver.read_rows(CSV)), (
        "docs/results.md's Fashion-MNIST table differs from bench/results/images.csv: run "
        "python bench/images.py --table-only --doc docs/results.md"
    )


def test_every_committed_row_is_complete_and_in_range():
    rows = driver.read_rows(CSV)
    assert rows and all(set(r) == set(bench.FIELDS) for r in rows)
    for r in rows:
        assert 0 < float(r["val/acc"]) <= 1 and 0 < float(r["test/acc"]) <= 1, r
        assert int(r["epochs"]) >= 1 and float(r["minutes"]) > 0 and r["recipe"].count("/v") == 1, r


def test_the_table_groups_seeds_of_a_recipe_into_mean_and_std():
    rows = [
        {"recipe": "r/v1", "overrides": "", "seed": str(s), "val/acc": v, "test/acc": t, "epochs": "4"}
        | {"minutes": "2.0", "machine": "m"}
        for s, v, t in ((0, "0.9000", "0.8000"), (1, "0.9200", "0.8200"))
    ]
    assert "| r/v1 |  | 2 | 0.9100 ± 0.0141 | 0.8100 ± 0.0141 | 4 | 2.0 | m |" in bench.table(rows)
