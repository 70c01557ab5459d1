"""The search report of an existing sweep dir, made anew (tunelab.sweeps.report says what it holds).

    python -m tunelab.report <sweep dir> [--importance ped-anova | fanova]

Importances: PED-ANOVA by default (which parameters decide whether a trial lands among the best; what
optuna-dashboard shows); `--importance fanova` (Optuna's own default; needs scikit-learn) gives the global view.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

from tunelab.errors import UserError, report
from tunelab.sweeps.jobs import CONFIRM_PREFIX, sweep_inputs
from tunelab.sweeps.report import FOLDER, write_report
from tunelab.sweeps.summary import replace_report
from tunelab.training.hydra_hooks.resolvers import register


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tunelab.report", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep dir (holding multirun.yaml)")
    parser.add_argument("--importance", default="ped-anova", choices=["ped-anova", "fanova"])
    args = parser.parse_args(argv)
    try:
        config_file = args.sweep_dir / "multirun.yaml"
        if not config_file.is_file():
            raise UserError(f"{args.sweep_dir}: no multirun.yaml; is it the sweep dir of a python train.py -m run?")
        register()  # the sweep's config may name tunelab's resolvers
        config = OmegaConf.load(config_file)
        rows, objectives, signs = sweep_inputs(config, args.sweep_dir)
        rows = [r for r in rows if not r["job"].startswith(CONFIRM_PREFIX)]  # the search's jobs
        markdown = write_report(args.sweep_dir, config, rows, objectives, signs, args.importance)
        replace_report(args.sweep_dir, markdown)
    except UserError as err:
        report(f"error: {err}")
        sys.exit(1)
    print(f"Search report: {args.sweep_dir / FOLDER / 'report.md'}")


if __name__ == "__main__":
    main()
