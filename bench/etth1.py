"""Measure ETTh1 recipes on the standard protocol; every finished run is one row of a CSV.

    python bench/etth1.py --data-dir ../shared/data --recipes etth1_m96 etth1_s96 --seeds 0 1 2
    python bench/etth1.py --recipes etth1_lstm_s96 --models lstm gru linear naive --seeds 0
    python bench/etth1.py --recipes etth1_s96 --overrides model.net.hidden_sizes=[128] --seeds 0   # a variant
    python bench/etth1.py --recipes etth1_m192 --lookback  # seed 0 at L = 96/336/720, seeds 1, 2 where val chose
    python bench/etth1.py --table-only --doc docs/results.md  # the tables of what the CSV holds, into the docs

Each (recipe, model, seed) is one ordinary training run of `experiment=<recipe> [model=<model>]
seed=<seed> [overrides]`, composed from conf/ and trained in this process: early stopping on val/loss, then the
best-validation checkpoint scored once on val and test. The row (recipe with its version, model, overrides, seed,
val/mse, test/mse, test/mae, minutes, machine) is appended to the CSV as soon as the run ends, so an
interrupted bench loses at most the run in progress; runs already in the CSV are skipped. Last, it
prints the ETTh1 table (S and M, four horizons: the segment recipe `etth1_<setting>` beside the
per-timestep LSTM, GRU, NLinear and naive runs of `etth1_lstm_<setting>`, mean ± std over seeds, the
published L = 96 numbers) and every other (recipe, model, overrides) in the CSV; `--doc docs/results.md`
writes the same text between that file's etth1-tables markers (bench/driver.py runs all this).
"""

from __future__ import annotations

import argparse
import functools
import statistics
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from driver import ROOT, Bench, Run, arguments, current, machine, read_rows, train_once
from driver import main as bench_main
from etth1_published import ANY_LOOKBACK, AT_96, S_ANY_LOOKBACK, SEARCH_TARGETS, TARGETS, Published

# source: where a row came from when not from this bench ("etth1_s96_search trial 17": bench/recipe_search.py)
FIELDS = ("recipe", "model", "overrides", "seed", "val/mse", "test/mse", "test/mae", "minutes", "machine", "source")
DETERMINISTIC = ("naive", "seasonal_naive")  # no parameters: one seed says it all
HORIZONS = (96, 192, 336, 720)
# The table's model columns: (heading, recipe of the setting, model= option; "" keeps the recipe's model)
COLUMNS = (
    ("segment recipe", "etth1_{setting}", ""),
    ("LSTM", "etth1_lstm_{setting}", "lstm"),
    ("GRU", "etth1_lstm_{setting}", "gru"),
    ("NLinear", "etth1_lstm_{setting}", "linear"),
    ("naive", "etth1_lstm_{setting}", "naive"),
)


PUBLISHED = AT_96  # the L = 96 table's published columns
LOOKBACKS = (96, 336, 720)  # the input lengths the lookback table chooses from, on seed 0's val/mse


def versioned(recipe: str) -> str:
    """A CSV row's recipe with its version; rows written before versions were recorded are v1 (the only
    version of every recipe then)."""
    return recipe if "/" in recipe else f"{recipe}/v1"


Key = tuple[str, str, str]  # a CSV group: (recipe/version, model, overrides)
Groups = dict[Key, list[dict[str, str]]]


def group(rows: list[dict[str, str]]) -> Groups:
    """The runs of each (recipe, model, overrides), in the CSV's order."""
    groups: Groups = defaultdict(list)
    for row in rows:
        groups[row["recipe"], row["model"], row["overrides"]].append(row)
    return groups


def number(value: float, digits: int = 4) -> str:
    """.3617 for 0.3617 (the tables' style), 1.2944 as it is."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("0.") else text


def stat(runs: list[dict[str, str]], key: str) -> str:
    """Mean ± sample std over seeds (the mean alone for one run)."""
    values = [float(r[key]) for r in runs]
    spread = f" ± {number(statistics.stdev(values))}" if len(values) > 1 else ""
    return f"{number(statistics.mean(values))}{spread}"


def cell(runs: list[dict[str, str]] | None, key: str, model: str) -> str:
    """One table cell: not run yet, the mean ± std of 3 seeds, or fewer seeds said in the cell."""
    if not runs:
        return "not run yet"
    if len(runs) < 3 and model not in DETERMINISTIC:
        return f"{stat(runs, key)} ({len(runs)} of 3 seeds)"
    return stat(runs, key)


def against(mse: float, target: float) -> str:
    """`met .360` or `+1.2% over .360`: a test MSE against its target."""
    return f"met {number(target, 3)}" if mse <= target else f"{100 * (mse / target - 1):+.1f}% over {number(target, 3)}"


def target_cell(setting: str, horizon_index: int, cells: dict) -> str:
    """M: the segment recipe against its target; S: whether it beats the LSTM and NLinear."""
    segment = cells.get("segment recipe")
    if not segment:
        return ""
    mse = statistics.mean(float(r["test/mse"]) for r in segment)
    if setting.startswith("M"):
        return against(mse, TARGETS["M at L = 96"][horizon_index])
    rivals = {name: cells.get(name) for name in ("LSTM", "NLinear")}
    if not all(rivals.values()):
        return ""
    beaten = [name for name, runs in rivals.items() if mse < statistics.mean(float(r["test/mse"]) for r in runs)]
    return "beats " + " and ".join(beaten) if beaten else "beats neither LSTM nor NLinear"


Cells = dict[str, list[dict[str, str]] | None]  # column heading -> the runs of that cell (None: not run)


def version(cells: Cells) -> str:
    """The segment recipe's version in this row (`v3`), "" when not run."""
    runs = cells.get("segment recipe")
    return runs[0]["recipe"].partition("/")[2] if runs else ""


def cell_key(recipe: str, model: str, setting: str, groups: Groups) -> tuple[str, str, str]:
    """The CSV group (recipe, model, overrides) of one table cell, without overrides: for the segment recipe
    the version with the lowest seed-0 val/mse at L = 96, for the other columns the recipe's current version."""
    name = recipe.format(setting=setting)
    if not model:
        key, _ = chosen(groups, name, seq_lens=(96,))
        if key:
            return key
    return current(name), model, ""


def settings(groups: Groups) -> list[tuple[str, int, Cells]]:
    """(row name, horizon index, cells) for S and M at every horizon, in the table's order."""
    table = []
    for features in ("S", "M"):
        for index, horizon in enumerate(HORIZONS):
            setting = f"{features.lower()}{horizon}"
            cells = {
                heading: groups.get(cell_key(recipe, model, setting, groups)) for heading, recipe, model in COLUMNS
            }
            table.append((f"{features}, H={horizon}", index, cells))
    return table


def grid(rows: list[tuple[str, list[str]]], headings: list[str]) -> list[str]:
    """Markdown table lines: a `setting` column, then `headings`."""
    lines = [f"| setting | {' | '.join(headings)} |", "| --- " * (len(headings) + 1) + "|"]
    return lines + [f"| {name} | {' | '.join(values)} |" for name, values in rows]


def table(rows: list[dict[str, str]]) -> str:
    """The ETTh1 tables (test MSE with the targets and published numbers; test MAE; val MSE; minutes per
    run), then every other run of the CSV."""
    rows = [{**row, "recipe": versioned(row["recipe"])} for row in rows]
    groups = group(rows)
    table_rows = settings(groups)
    models = [(heading, model) for heading, _, model in COLUMNS]

    def metric(key: str) -> list[tuple[str, list[str]]]:
        return [(name, [cell(cells[h], key, m) for h, m in models]) for name, _, cells in table_rows]

    def minutes(runs: list[dict[str, str]] | None) -> str:
        return f"{statistics.mean(float(r['minutes']) for r in runs):.1f}" if runs else ""

    headings = [h for h, _ in models]
    mse = [
        (name, values + [target_cell(name, index, cells)] + [published(p, "mse", name, index) for p in PUBLISHED])
        for (name, values), (_, index, cells) in zip(metric("test/mse"), table_rows, strict=True)
    ]
    mae = [
        (name, values + [published(p, "mae", name, index) for p in PUBLISHED])
        for (name, values), (_, index, _) in zip(metric("test/mae"), table_rows, strict=True)
    ]
    val = [
        (name, [*values, version(cells)])
        for (name, values), (_, _, cells) in zip(metric("val/mse"), table_rows, strict=True)
    ]
    in_table = {id(r): r for _, _, cells in table_rows for runs in cells.values() for r in runs or []}
    machines = sorted({r["machine"] for r in in_table.values()})
    sources = "; ".join(f"{name}: {p.source}" for name, p in PUBLISHED.items())
    others = [row for row in rows if id(row) not in in_table]
    return "\n".join(
        [
            "Test MSE (mean ± std over seeds 0, 1, 2; naive is deterministic, one run; the segment recipe is the "
            "version of it with the lowest seed-0 val/mse at L = 96, named in the validation table):",
            "",
            *grid(mse, [*headings, "target", *PUBLISHED]),
            "",
            f"Published test MSE and MAE, ETTh1 M, L = 96: {sources}. Targets as issue 32 sets them: "
            f"{' / '.join(number(t, 3) for t in TARGETS['M at L = 96'])}.",
            "",
            "Test MAE:",
            "",
            *grid(mae, [*headings, *PUBLISHED]),
            "",
            "Validation MSE (what the recipes were chosen on):",
            "",
            *grid(val, [*headings, "version"]),
            "",
            f"Minutes per run (wall time of training with early stopping, then val and test, while other runs "
            f"shared the cores); machines: {'; '.join(machines)}.",
            "",
            *grid([(name, [minutes(cells[h]) for h in headings]) for name, _, cells in table_rows], headings),
            "",
            "The input length chosen per horizon on validation: each version of the segment recipe at L = 96, 336 "
            "and 720, seed 0 (the val column: the lowest at each length); the length and version with the lowest "
            "val/mse then run with seeds 0, 1, 2 (test MSE and MAE: their mean ± std). "
            "Beside it the best honest published results at any input length:",
            "",
            lookback_table(groups, "M", ANY_LOOKBACK),
            "",
            lookback_table(groups, "S", S_ANY_LOOKBACK),
            "",
            "Published: " + "; ".join(f"{n}: {p.source}" for n, p in {**ANY_LOOKBACK, **S_ANY_LOOKBACK}.items()) + ".",
            "",
            "Hand-made against found by search (bench/recipe_search.py): the hand-made row is the lookback table's "
            "choice; the searched row is the confirmed configuration of `etth1_<setting>_search` with the lowest "
            "mean val/mse over seeds 0, 1, 2 (its settings in the account below). Mean ± std over the 3 seeds:",
            "",
            search_table(groups),
            "",
            "Every other run in the CSV (variants tried on val/mse, longer inputs):",
            "",
            summary(others),
        ]
    )


def published(name: str, field: str, setting: str, index: int) -> str:
    """A published M number (`field`: mse or mae) for this row; S rows have none at L = 96."""
    values = getattr(PUBLISHED[name], field)
    return number(values[index], 3) if setting.startswith("M") and values else ""


def lookback_override(seq_len: int, extra: tuple[str, ...] = ()) -> str:
    """The CSV overrides of a run at input length `seq_len` (none for the recipes' own L = 96) after `extra`."""
    return " ".join([*extra, *([] if seq_len == 96 else [f"data.seq_len={seq_len}"])])


def lookback_lengths(seq_lens: tuple[int, ...] = LOOKBACKS, extra: tuple[str, ...] = ()) -> dict[str, int]:
    """The CSV overrides of a run at each input length of `seq_lens` (after `extra`) -> that length."""
    return {lookback_override(n, extra): n for n in seq_lens}


def chosen(
    groups: Groups, recipe: str, model: str = "", seq_lens: tuple[int, ...] = LOOKBACKS, extra: tuple[str, ...] = ()
) -> tuple[Key | None, dict[int, float]]:
    """The CSV group with the lowest seed-0 val/mse among every version of `recipe` (with `model` and the
    overrides `extra`) run at the input lengths `seq_lens` (each version is a candidate measured on the same
    protocol, so the choice stays on validation when a newer version helps at some lengths and hurts at
    others), and the lowest seed-0 val/mse at each length."""
    lengths = lookback_lengths(seq_lens, extra)
    seed_0: dict[Key, float] = {
        key: float(run["val/mse"])
        for key, runs in groups.items()
        if key[0].startswith(f"{recipe}/") and key[1] == model and key[2] in lengths
        for run in runs
        if str(run["seed"]) == "0"
    }
    by_length: dict[int, float] = {}
    for key, val in seed_0.items():
        by_length[lengths[key[2]]] = min(val, by_length.get(lengths[key[2]], val))
    return (min(seed_0, key=seed_0.get) if seed_0 else None), by_length


def lookback_table(groups: Groups, features: str, rivals: dict[str, Published]) -> str:
    """Per horizon: the input length chosen on seed 0's val/mse, its 3-seed test numbers, the target, the rivals."""
    targets = TARGETS[f"{features}, lookback chosen"]
    headings = [
        "seed-0 val MSE at L = " + " / ".join(map(str, LOOKBACKS)),
        "chosen L (version)",
        "test MSE",
        "test MAE",
    ]
    lengths = lookback_lengths()  # the chosen group's overrides -> its input length
    rows = []
    for index, horizon in enumerate(HORIZONS):
        setting = f"{features.lower()}{horizon}"
        key, seed_0 = chosen(groups, f"etth1_{setting}")
        runs = groups.get(key) if key else None
        vals = " / ".join(number(seed_0[n]) if n in seed_0 else "-" for n in LOOKBACKS)
        picked = f"{lengths[key[2]]} ({key[0].partition('/')[2]})" if key else ""
        picked += "" if len(seed_0) == len(LOOKBACKS) else " (of those run)"
        mse = statistics.mean(float(r["test/mse"]) for r in runs) if runs else None
        rows.append(
            (
                f"{features}, H={horizon}",
                [vals, picked, cell(runs, "test/mse", ""), cell(runs, "test/mae", "")]
                + [against(mse, targets[index]) if mse is not None else ""]
                + [number(p.mse[index], 3) for p in rivals.values()],
            )
        )
    names = [f"{name} (L = {p.lookback})" for name, p in rivals.items()]
    return "\n".join(grid(rows, [*headings, "target", *names]))


def searched(groups: Groups, search: str) -> tuple[str, list[dict[str, str]]] | None:
    """The confirmed configuration of the search `search` (its rows' source) with the lowest mean val/mse over 3
    seeds: its source (`etth1_s96_search trial 4`) and runs."""
    prefix = f"{search} trial "
    confirmed = [
        runs for runs in groups.values() if len(runs) >= 3 and (runs[0].get("source") or "").startswith(prefix)
    ]
    if not confirmed:
        return None
    runs = min(confirmed, key=lambda rs: statistics.mean(float(r["val/mse"]) for r in rs))
    return runs[0]["source"], runs


def search_table(groups: Groups) -> str:
    """Per searched setting: the hand-made choice and the search's winner, val and test over 3 seeds, the target."""
    lengths = lookback_lengths()
    rows = []
    for setting, target in SEARCH_TARGETS.items():
        name = f"{setting[0].upper()}, H={setting[1:]}"
        key, _ = chosen(groups, f"etth1_{setting}")
        found = searched(groups, f"etth1_{setting}_search")
        for label, runs in (
            (
                f"hand-made: {key[0].partition('/')[2]} at L = {lengths[key[2]]}" if key else "hand-made",
                groups.get(key),
            ),
            (
                f"found by search: {found[0].partition('_search ')[2]}" if found else "found by search",
                found and found[1],
            ),
        ):
            mse = statistics.mean(float(r["test/mse"]) for r in runs) if runs else None
            values = [cell(runs, k, "") for k in ("val/mse", "test/mse", "test/mae")]
            rows.append((name, [label, *values, against(mse, target) if mse is not None else ""]))
    return "\n".join(grid(rows, ["recipe", "val MSE", "test MSE", "test MAE", "target"]))


def summary(rows: list[dict[str, str]]) -> str:
    """Markdown table: mean ± std over seeds of each (recipe, model, overrides) in `rows`."""
    lines = [
        "| recipe | model | overrides | seeds | val MSE | test MSE | test MAE | minutes per run | machine |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for (recipe, model, overrides), runs in group(rows).items():
        minutes = statistics.mean(float(r["minutes"]) for r in runs)
        machines = ", ".join(sorted({r["machine"] for r in runs}))
        lines.append(
            f"| {recipe} | {model or 'recipe'} | {overrides} | {len(runs)} | {stat(runs, 'val/mse')} | "
            f"{stat(runs, 'test/mse')} | {stat(runs, 'test/mae')} | {minutes:.1f} | {machines} |"
        )
    return "\n".join(lines)


def planned(args: argparse.Namespace) -> Iterator[Run]:
    """The runs the command asks for; with --lookback, seed 0 at each input length first, then the other seeds at
    the length that seed 0's val/mse chose (read from the CSV those runs were appended to)."""
    extra = tuple(args.overrides)
    for recipe in args.recipes:
        for model in args.models:
            seeds = args.seeds[:1] if model in DETERMINISTIC else args.seeds
            if not args.lookback:
                yield from runs(args, recipe, model, args.overrides, seeds)
                continue
            for seq_len in LOOKBACKS:
                yield from runs(args, recipe, model, lookback_override(seq_len, extra).split(), [0])
            key, _ = chosen(group(read_rows(args.csv)), recipe, model, extra=extra)
            if key and key[0] != current(recipe):
                print(f"{recipe}: {key[0]} has the lowest seed-0 val/mse, not the current version", flush=True)
            elif key:
                yield from runs(args, recipe, model, key[2].split(), seeds)


def runs(args: argparse.Namespace, recipe: str, model: str, overrides: list[str], seeds: list[int]) -> Iterator[Run]:
    """`recipe` with `model` and `overrides` at each seed."""
    extra = " ".join(overrides)
    name = " ".join(filter(None, [current(recipe), model or "recipe", extra]))
    for seed in seeds:
        measure = functools.partial(run, recipe, model, overrides, seed, args.data_dir.resolve())
        yield Run(f"{name} seed {seed}", (current(recipe), model, extra, str(seed)), measure)


def run(recipe: str, model: str, overrides: list[str], seed: int, data_dir: Path, log_dir: Path) -> dict[str, str]:
    """One run of `experiment=<recipe> [model=<model>] seed=<seed> [overrides]`; its CSV row."""
    chosen = [f"experiment={recipe}", f"seed={seed}", *([f"model={model}"] if model else []), *overrides]
    trained = train_once(chosen, log_dir, data_dir=data_dir)
    return {
        "recipe": trained.recipe,
        "model": model,
        "overrides": " ".join(overrides),
        "seed": seed,
        **{k: f"{trained.metrics[k]:.6f}" for k in ("val/mse", "test/mse", "test/mae")},
        "minutes": f"{trained.minutes:.2f}",
        "machine": machine(),
    }


def key(row: dict) -> tuple[str, str, str, str]:
    """What makes two rows the same run: recipe with its version, model, overrides, seed."""
    return versioned(row["recipe"]), row["model"], row["overrides"], str(row["seed"])


BENCH = Bench("etth1", FIELDS, key, shown=("val/mse", "test/mse", "test/mae", "minutes"), table=table)


def main() -> None:
    parser = arguments(__doc__, BENCH)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding ETT-small/")
    parser.add_argument("--recipes", nargs="+", default=["etth1_m96", "etth1_s96"], help="experiment= options")
    parser.add_argument("--models", nargs="+", default=[""], help="model= options ('' keeps the recipe's model)")
    parser.add_argument("--overrides", nargs="*", default=[], help="extra key=value overrides of every run")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument(
        "--lookback",
        action="store_true",
        help=f"seed 0 at L = {', '.join(map(str, LOOKBACKS))}, then --seeds at the length with the lowest val/mse",
    )
    args = parser.parse_args()
    bench_main(BENCH, args, planned(args))


if __name__ == "__main__":
    main()
