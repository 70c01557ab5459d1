"""bench/etth1.py: finished runs are skipped, and the ETTh1 tables of docs/results.md are rendered from the CSV."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from conftest import DATA, ROOT, doc_block, load_bench

bench = load_bench("etth1")
driver = load_bench("driver")


def row(
    recipe: str, model: str, seed: int, test_mse: float, overrides: str = "", minutes: float = 1.0, val: float = 0.5
) -> dict:
    return {
        "recipe": recipe if "/" in recipe else bench.current(recipe),  # the recipe's version in conf/ now
        "model": model,
        "overrides": overrides,
        "seed": seed,
        "val/mse": val,
        "test/mse": test_mse,
        "test/mae": test_mse / 2,
        "minutes": minutes,
        "machine": "CPU test",
    }


def write(path, rows) -> None:
    for r in rows:
        driver.append_row(path, r, bench.FIELDS)


def table_line(text: str, setting: str) -> str:
    """The first table row of `text` for `setting` (the test MSE table comes first)."""
    return next(line for line in text.splitlines() if line.startswith(f"| {setting} |"))


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_the_table_puts_each_run_in_its_setting_and_column_with_mean_and_std(tmp_path):
    path = tmp_path / "etth1.csv"
    write(
        path,
        [row("etth1_m192", "", seed, mse) for seed, mse in enumerate([0.40, 0.41, 0.42])]  # segment recipe
        + [row("etth1_lstm_m192", "lstm", seed, mse) for seed, mse in enumerate([0.45, 0.47])]  # 2 of 3 seeds
        + [row("etth1_lstm_m192", "naive", 0, 1.3)]  # deterministic: one run is the cell
        + [row("etth1_m96", "", 0, 0.36, overrides="data.seq_len=336", minutes=30.0)],  # another run
    )
    text = bench.table(bench.read_rows(path))
    m192 = dict(zip(cells(table_line(text, "setting")), cells(table_line(text, "M, H=192")), strict=True))
    assert m192["segment recipe"] == ".4100 ± .0100"
    assert m192["LSTM"] == ".4600 ± .0141 (2 of 3 seeds)"
    assert m192["GRU"] == "not run yet" and m192["naive"] == "1.3000"
    assert m192["target"] == "+1.5% over .404" and m192["SegRNN"] == ".408" and m192["DLinear"] == ".437"
    assert m192["CycleNet/Linear"] == ".427"
    assert table_line(text, "S, H=96").count("not run yet") == 5
    # MAE table: the same cells from test/mae, beside the published MAE
    mae = [line for line in text.splitlines() if line.startswith("| M, H=192 |")][1]
    assert cells(mae)[1] == ".2050 ± .0050" and cells(mae)[6:] == [".419", "", ".436", ".445", ".432"]  # no MAE: ""
    assert cells([line for line in text.splitlines() if line.startswith("| S, H=96 |")][1])[6:] == [""] * 5
    val = [line for line in text.splitlines() if line.startswith("| M, H=192 |")][2]
    assert cells(val)[1] == ".5000 ± .0000" and "Validation MSE" in text
    # runs outside the table are listed below it, with their overrides
    assert (
        f"| {bench.current('etth1_m96')} | recipe | data.seq_len=336 | 1 | .5000 | .3600 | .1800 | 30.0 | CPU test |"
        in text
    )


def test_s_rows_say_whether_the_segment_recipe_beats_the_lstm_and_nlinear(tmp_path):
    rows = [row("etth1_s336", "", s, 0.080) for s in range(3)]
    rows += [row("etth1_lstm_s336", "lstm", s, 0.085) for s in range(3)]
    rows += [row("etth1_lstm_s336", "linear", s, 0.079) for s in range(3)]
    assert "| beats LSTM |" in table_line(bench.table(rows), "S, H=336")
    rows += [row("etth1_lstm_s336", "linear", 3, 0.090)]  # NLinear's mean is now .0823 > .080
    assert "| beats LSTM and NLinear |" in table_line(bench.table(rows), "S, H=336")


def test_the_lookback_table_takes_the_input_length_with_the_lowest_seed_0_val_mse():
    rows = [row("etth1_m96", "", 0, 0.36, val=0.66)]  # L = 96: the recipe as it is
    rows += [row("etth1_m96", "", s, 0.35 + s / 100, "data.seq_len=336", val=0.63 + s) for s in range(3)]
    rows += [row("etth1_m96", "", 0, 0.30, "data.seq_len=720", val=0.64)]  # best test, not chosen: val decides
    rows += [row("etth1_s192", "", 0, 0.07, val=0.11), row("etth1_s192", "", 0, 0.06, "data.seq_len=720", val=0.10)]
    text = bench.table(rows).split("Hand-made against")[0]  # up to the lookback tables
    lines = [line for line in text.splitlines() if line.startswith("| M, H=96 |")]
    m96 = dict(zip(cells(table_line(text.split("input length chosen")[1], "setting")), cells(lines[-1]), strict=True))
    assert m96["seed-0 val MSE at L = 96 / 336 / 720"] == ".6600 / .6300 / .6400"
    assert m96["chosen L (version)"] == f"336 ({bench.current('etth1_m96').partition('/')[2]})"
    assert m96["test MSE"] == ".3600 ± .0100" and m96["target"] == "+3.4% over .348"
    assert m96["DUET (L = 96/336/512)"] == ".352"
    s192 = cells([line for line in text.splitlines() if line.startswith("| S, H=192 |")][-1])
    version = bench.current("etth1_s192").partition("/")[2]
    assert s192[1:4] == [".1100 / - / .1000", f"720 ({version}) (of those run)", ".0600 (1 of 3 seeds)"]
    assert s192[-1] == ".069"  # NLinear at L = 336


def test_the_search_table_puts_the_searched_winner_beside_the_hand_made_choice():
    """The winner is the confirmed configuration with the lowest mean val/mse over 3 seeds, not the best test."""
    rows = [row("etth1_s96", "", s, 0.055, "data.seq_len=336", val=0.089) for s in range(3)]
    for trial, val, test in ((4, 0.088, 0.056), (9, 0.090, 0.050)):
        rows += [{**row("etth1_s96", "", s, test, f"data.seq_len=720 optimizer.lr={trial}", val=val),
                  "source": f"etth1_s96_search trial {trial}"} for s in range(3)]  # fmt: skip
    rows += [{**row("etth1_s96", "", 0, 0.01, "optimizer.lr=1", val=0.01), "source": "etth1_s96_search trial 2"}]
    lines = [line for line in bench.table(rows).split("Hand-made against")[1].splitlines() if "| S, H=96 |" in line]
    hand, found = (cells(line) for line in lines)
    version = bench.current("etth1_s96").partition("/")[2]
    same = " ± .0000"  # three seeds with one value each
    assert hand[1:] == [f"hand-made: {version} at L = 336", ".0890" + same, ".0550" + same, ".0275" + same,
                        "+3.8% over .053"]  # fmt: skip
    assert found[1:] == ["found by search: trial 4", ".0880" + same, ".0560" + same, ".0280" + same, "+5.7% over .053"]


def test_an_older_recipe_version_is_chosen_only_on_a_lower_seed_0_val_mse_and_never_mixed_in(tmp_path):
    rows = [row("etth1_m336/v0", "", s, 0.40, val=0.60) for s in range(3)] + [row("etth1_m336", "", 0, 0.45)]
    rows += [{**row("etth1_m336", "", 0, 0.47), "recipe": "etth1_m336"}]  # written before versions: v1
    text = bench.table(rows)  # the current version's seed-0 val/mse (.50) is the lowest: its one run
    assert "| etth1_m336/v1 | recipe |  | 1 | .5000 | .4700 |" in text
    assert cells(table_line(text, "M, H=336"))[1] == ".4500 (1 of 3 seeds)"
    assert "| etth1_m336/v0 | recipe |  | 3 | .6000 ± .0000 | .4000 ± .0000 |" in text
    rows += [row("etth1_m336/v0", "", 0, 0.30, "data.seq_len=720", val=0.55)]
    rows += [row("etth1_m336/v0", "", s, 0.30, "data.seq_len=720", val=0.70) for s in (1, 2)]
    rows[0]["val/mse"] = 0.45  # v0 at L = 96 now beats the current version on seed 0
    text = bench.table(rows)
    assert cells(table_line(text, "M, H=336"))[1] == ".4000 ± .0000"  # v0's three seeds, not mixed with v1's
    val = [line for line in text.splitlines() if line.startswith("| M, H=336 |")][2]
    assert cells(val)[-1] == "v0"  # the version is named beside the val/mse it was chosen on
    lookback = cells([line for line in text.splitlines() if line.startswith("| M, H=336 |")][-1])
    assert lookback[1:4] == [".4500 / - / .5500", "96 (v0) (of those run)", ".4000 ± .0000"]


def test_finished_runs_are_skipped_and_the_csv_keeps_its_rows(tmp_path):
    path = tmp_path / "etth1.csv"
    write(path, [row("etth1_lstm_s96", "naive", 0, 0.123)])
    before = path.read_text()
    command = [sys.executable, str(ROOT / "bench" / "etth1.py"), "--data-dir", str(DATA), "--csv", str(path)]
    result = subprocess.run(
        [*command, "--recipes", "etth1_lstm_s96", "--models", "naive", "--seeds", "0", "1", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"etth1_lstm_s96/v1 naive seed 0: in {path} already" in result.stdout
    assert path.read_text() == before  # not trained again (a real naive run scores .0693), no row added
    assert cells(table_line(result.stdout, "S, H=96"))[5] == ".1230"


@pytest.mark.slow(reason="runs the bench's lookback plan end to end (11 s); the fast tier holds its other plans")
def test_lookback_runs_seed_0_at_each_length_then_the_other_seeds_at_the_one_val_chose(tmp_path):
    path = tmp_path / "etth1.csv"
    short = ["trainer.max_epochs=1", "trainer.limit_train_batches=5"]
    extra = " ".join(short)
    vals = {96: 0.30, 336: 0.20, 720: 0.25}  # L = 336 has the lowest seed-0 val/mse
    write(
        path,
        [
            row("etth1_lstm_s96", "linear", 0, 0.1, bench.lookback_override(n, tuple(short)), val=v)
            for n, v in vals.items()
        ],
    )
    command = [sys.executable, str(ROOT / "bench" / "etth1.py"), "--data-dir", str(DATA), "--csv", str(path)]
    command += [
        "--recipes",
        "etth1_lstm_s96",
        "--models",
        "linear",
        "--lookback",
        "--seeds",
        "0",
        "1",
        "--overrides",
        *short,
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("seed 0: in") == 4  # every length's seed 0 (and the chosen one's) is there already
    added = bench.read_rows(path)[3:]
    assert [(r["overrides"], r["seed"]) for r in added] == [(f"{extra} data.seq_len=336", "1")]
    assert 0 < float(added[0]["val/mse"]) < 10  # a real run: trained and scored
    write(path, [row("etth1_lstm_s96/v0", "linear", 0, 0.1, bench.lookback_override(720, tuple(short)), val=0.1)])
    result = subprocess.run([*command, "--seeds", "0", "2"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "etth1_lstm_s96: etth1_lstm_s96/v0 has the lowest seed-0 val/mse, not the current version" in result.stdout
    assert len(bench.read_rows(path)) == 5  # seed 2 of the current version is not run at a length v0 was chosen at


def test_the_doc_tables_are_the_ones_rendered_from_the_committed_csv():
    block = doc_block(bench.BENCH)
    assert block == bench.table(bench.read_rows(ROOT / "bench" / "results" / "etth1.csv")), (
        "docs/results.md's ETTh1 tables differ from bench/results/etth1.csv: run "
        "python bench/etth1.py --table-only --doc docs/results.md"
    )


def test_the_doc_block_must_exist_before_it_is_written(tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text("no markers here\n")
    with pytest.raises(SystemExit, match=r"has no .*etth1 tables"):
        driver.write_block(doc, "text", bench.BENCH.begin, bench.BENCH.end)
    assert doc.read_text() == "no markers here\n"


def test_every_row_of_the_committed_csv_has_every_field():
    with (ROOT / "bench" / "results" / "etth1.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    required = [
        k for k in bench.FIELDS if k not in ("model", "overrides", "source")
    ]  # "": the recipe as it is / this bench
    assert rows and all(set(r) == set(bench.FIELDS) and all(r[k] for k in required) for r in rows)


@pytest.mark.slow(reason="a train.py process of M96 (shortened) beside a stand-in for the official code")
def test_the_segrnn_speed_bench_times_both_processes_and_prints_their_ratio(tmp_path, ett_dir):
    checkout = tmp_path / "SegRNN"
    checkout.mkdir()
    # stands in for the official entry point: takes its arguments, writes into its cwd as the official one does
    (checkout / "run_longExp.py").write_text(
        "import sys, time\nassert '--train_epochs' in sys.argv\n"
        "open('result.txt', 'a').write('mse:0\\n')\ntime.sleep(0.5)\n"
    )
    command = [sys.executable, str(ROOT / "bench" / "segrnn_speed.py"), "--data-dir", str(ett_dir.parent)]
    command += ["--segrnn-dir", str(checkout), "--repeats", "1", "--threads", "1", "--overrides"]
    command += ["trainer.limit_train_batches=2", "trainer.limit_val_batches=2", "trainer.limit_test_batches=2"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    ratio = float(result.stdout.split("tunelab / official SegRNN: ")[1].split()[0])
    assert ratio > 1  # a real training against a half-second stand-in
    assert not (checkout / "result.txt").exists()  # the official code writes into a scratch dir, not the checkout
