"""tunelab's own searches for the ETTh1 recipes, run as the results in docs/results.md were made.

    python bench/recipe_search.py --data-dir data --searches etth1_s96_search etth1_s192_search
    python bench/recipe_search.py --data-dir data --searches etth1_m96_search --trials 12
    python bench/recipe_search.py --table-only --doc docs/results.md

Each search (`hparams_search=<search>`: conf/hparams_search/etth1_s96_search.yaml and those built on it) runs
as `--workers` processes of `python train.py` on one study, started together, each job on its share of the
cores. The study lives in `bench/results/searches/<search>.journal`, so a search that was stopped resumes
where it was: run the same command again, and the workers add trials until the study holds `--trials`
(`hydra.sweeper.study_trials`: a budget of the study, not of each worker, so the workers end together).
The jobs' dirs are under `logs/recipe_searches/<search>/`. After their trials the workers confirm the
study's 3 best configurations on seeds 0, 1, 2, each job claimed by one of them. Each confirmation job
becomes a row of bench/results/etth1.csv tagged with its study and trial (`source`); the search's summary
and importances are copied beside its journal, the wall time of each pass into `<search>.json`. Last comes
the account of every search in the results folder: trials, pruned, failed, minutes, the best trial's
val/mse, the confirmed winner (the lowest mean val/mse over the seeds) and what the importances say.
Only validation metrics choose; test is reported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import yaml
from driver import QUIET, ROOT, append_row, arguments, machine, read_rows, run_workers, stat, write_block
from etth1 import BENCH as ETTH1
from etth1 import group, searched

from tunelab.training.optuna_storage import open_storage

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
BEGIN = "<!-- recipe_search tables: written by python bench/recipe_search.py --table-only --doc docs/results.md -->"
END = "<!-- end of recipe_search tables -->"


def load_study(journal: Path) -> optuna.Study | None:
    if not journal.is_file():
        return None
    storage = open_storage(str(journal))
    name = journal.stem  # the search's study_name is its config's name
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    return optuna.load_study(study_name=name, storage=storage) if name in names else None


def run_search(search: str, args, studies: Path, runs: Path) -> None:
    """Start the workers on the study and wait for all; record the pass's wall time."""
    journal, sweep_dir = studies / f"{search}.journal", runs / search
    study = load_study(journal)
    done = sum(t.state in FINISHED for t in study.trials) if study else 0
    # the budget is the study's, so a worker whose trials happen to be cheap takes more of them
    command = [sys.executable, str(ROOT / "train.py"), f"hparams_search={search}", f"hydra.sweep.dir={sweep_dir}"]
    command += [f"hydra.sweeper.storage={journal}", f"hydra.sweeper.n_trials={args.trials}"]
    command += [f"hydra.sweeper.study_trials={args.trials}", f"paths.data_dir={args.data_dir}", *QUIET, *args.overrides]
    print(f"{search}: {done} trials finished so far; {args.workers} workers go on to {args.trials}", flush=True)
    started, wall, codes = run_workers(command, args.workers, sweep_dir)
    passes_file = studies / f"{search}.json"
    passes = json.loads(passes_file.read_text()) if passes_file.is_file() else []
    passes.append({"started": started, "minutes": round(wall / 60, 2), "workers": args.workers,
                   "study_trials": args.trials, "exit_codes": codes, "machine": machine()})  # fmt: skip
    passes_file.write_text(json.dumps(passes, indent=1) + "\n")
    if any(codes):
        sys.exit(f"error: a worker of {search} exited with {codes}; see {sweep_dir}/worker*.log")
    # fANOVA over the whole space: the report's default PED-ANOVA reads the top 10% of trials, 3 of a 32-trial search
    subprocess.run(
        [sys.executable, "-m", "tunelab.report", str(sweep_dir), "--importance", "fanova"], cwd=ROOT, check=True
    )
    for name in ("sweep_summary.md", "report/importances.csv"):
        if (sweep_dir / name).is_file():
            (studies / search).mkdir(exist_ok=True)
            shutil.copy(sweep_dir / name, studies / search / Path(name).name)


def confirmed_rows(search: str, sweep_dir: Path, study: optuna.Study) -> list[dict[str, str]]:
    """One etth1.csv row per finished confirmation job: the trial's searched settings as overrides."""
    rows = []
    for metrics_file in sorted(sweep_dir.glob("confirm_*/metrics.json")):
        job = metrics_file.parent
        result = json.loads(metrics_file.read_text())
        if result.get("status") != "ok":
            continue
        trial = int(job.name.split("_")[1])  # confirm_<trial>_seed<seed>_<digest>
        searched = study.trials[trial].params
        given = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        config = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        metrics = result["metrics"]
        rows.append({
            "recipe": config["recipe"],
            "model": "",
            "overrides": " ".join(o for o in given if o.split("=")[0] in searched),
            "seed": str(config["seed"]),
            **{k: f"{metrics[k]:.6f}" for k in ("val/mse", "test/mse", "test/mae")},
            "minutes": f"{result['seconds'] / 60:.2f}",
            "machine": f"{machine(result.get('threads'))}, {result.get('precision', '32-true')}",
            "source": f"{search} trial {trial}",
        })  # fmt: skip
    return rows


def record(search: str, csv: Path, studies: Path, runs: Path) -> None:
    """Append the search's confirmation rows not in the CSV yet."""
    study = load_study(studies / f"{search}.journal")
    if study is None:
        return
    done = {ETTH1.key(row) for row in read_rows(csv)}
    for row in confirmed_rows(search, runs / search, study):
        if ETTH1.key(row) not in done:
            append_row(csv, row, ETTH1.fields)
            print(f"{row['source']} seed {row['seed']}: val/mse {row['val/mse']}, test/mse {row['test/mse']}")


def account(studies: Path, csv: Path) -> str:
    """The markdown account of every search whose journal is in `studies`."""
    groups = group(read_rows(csv))
    lines = [
        "| search | trials: finished / pruned / failed | minutes (workers) | best trial val/mse | confirmed winner "
        "(3 seeds) | its val/mse | its test/mse | its test/mae | most important (fANOVA) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    winners = []
    for journal in sorted(studies.glob("*.journal")):
        search, study = journal.stem, load_study(journal)
        if study is None:
            continue
        states = [t.state for t in study.trials]
        count = {s: states.count(s) for s in FINISHED}
        complete = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = f"{min(complete):.4f}" if complete else ""
        passes_file = studies / f"{search}.json"
        passes = json.loads(passes_file.read_text()) if passes_file.is_file() else []
        minutes = f"{sum(p['minutes'] for p in passes):.0f} ({passes[-1]['workers']})" if passes else ""
        cells = ["", "", "", ""]
        if found := searched(groups, search):  # the lowest mean val/mse, as the ETTh1 tables choose it
            trial, runs = found[0].split()[-1], found[1]
            cells = [trial] + [stat([float(r[k]) for r in runs]) for k in ("val/mse", "test/mse", "test/mae")]
            winners.append(f"| {search} | {trial} | `{runs[0]['overrides']}` |")
        importances = studies / search / "importances.csv"
        top = ""
        if importances.is_file():
            ranked = [line.split(",") for line in importances.read_text().splitlines()[1:]]
            top = ", ".join(f"{p} {float(v):.2f}" for _, p, v in sorted(ranked, key=lambda r: -float(r[2]))[:3])
        finished, pruned, failed = (count[s] for s in FINISHED)
        lines.append(
            f"| {search} | {finished + pruned + failed} / {pruned} / {failed} | {minutes} | {best} "
            f"| {' | '.join(cells)} | {top} |"
        )
    lines += ["", "The confirmed winners' settings (beside each search config's fixed ones):", ""]
    lines += ["| search | trial | overrides |", "| --- | --- | --- |", *winners]
    return "\n".join(lines)


def main() -> None:
    parser = arguments(__doc__, ETTH1)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding ETT-small/")
    parser.add_argument("--searches", nargs="*", default=[], help="hparams_search= options to run")
    parser.add_argument("--trials", type=int, default=32, help="trials each study should hold (a resume adds the rest)")
    parser.add_argument("--workers", type=int, default=2, help="train.py processes on one study at once")
    parser.add_argument("--studies", type=Path, default=ROOT / "bench" / "results" / "searches", help="journals")
    parser.add_argument("--runs", type=Path, default=ROOT / "logs" / "recipe_searches", help="the jobs' dirs")
    parser.add_argument("--overrides", nargs="*", default=[], help="extra key=value overrides of every job")
    args = parser.parse_args()
    args.data_dir, studies, runs = args.data_dir.resolve(), args.studies.resolve(), args.runs.resolve()
    studies.mkdir(parents=True, exist_ok=True)
    for search in [] if args.table_only else args.searches:
        run_search(search, args, studies, runs)
        record(search, args.csv, studies, runs)
    text = account(studies, args.csv)
    print(text)
    if args.doc:
        write_block(args.doc, text, BEGIN, END)


if __name__ == "__main__":
    main()
