"""Reproduce the ETTh1 accuracy table: recurrent models against baselines on the standard protocol.

    python bench/etth1.py --data-dir ../shared/data            # S96, S336, M96; LSTM, GRU, baselines; 3 seeds
    python bench/etth1.py --settings s96 --models lstm naive --seeds 0

Each (setting, model, seed) is one ordinary training run of `experiment=etth1_lstm_<setting>
model=<model> seed=<seed>`, composed from conf/ and trained in this process. Prints a markdown table of
test MSE / MAE on the scaled data (mean ± std over seeds), each model's MSE as a ratio of the best
baseline's, and the published numbers for reference.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tunelab.cli import compose_train
from tunelab.train import train

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ("naive", "seasonal_naive", "linear")
# Published test MSE on this protocol (scaled data). DLinear: Zeng et al., AAAI 2023, Tables 2 and 9
# (univariate). PatchTST/64: Nie et al., ICLR 2023, Table 3. Naive and seasonal-naive measured here.
PUBLISHED = {
    "s96": "DLinear .056",
    "s336": "DLinear .098",
    "m96": "DLinear .375, PatchTST/64 .370",
}
TARGETS = {"s96": (0.0693, 0.062, 0.055), "s336": (0.1108, 0.095, 0.082), "m96": (0.512, 0.42, 0.375)}


def run(setting: str, model: str, seed: int, data_dir: Path, log_dir: Path) -> dict[str, float]:
    overrides = [
        f"experiment=etth1_lstm_{setting}",
        f"model={model}",
        f"seed={seed}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
    ]
    output_dir = log_dir / f"{setting}_{model}_{seed}"
    return train(compose_train(ROOT / "conf", overrides, root_dir=ROOT, data_dir=data_dir, output_dir=output_dir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding ETT-small/")
    parser.add_argument("--settings", nargs="+", default=["s96", "s336", "m96"])
    parser.add_argument("--models", nargs="+", default=["naive", "seasonal_naive", "linear", "lstm", "gru"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for setting in args.settings:
            results = {}
            for model in args.models:
                # naive and seasonal naive are deterministic: one run says it all
                seeds = args.seeds[:1] if model in ("naive", "seasonal_naive") else args.seeds
                started = time.perf_counter()
                metrics = [run(setting, model, seed, args.data_dir.resolve(), Path(tmp)) for seed in seeds]
                minutes = (time.perf_counter() - started) / 60
                mse = [m["test/mse"] for m in metrics]
                mae = [m["test/mae"] for m in metrics]
                results[model] = (mse, mae, minutes)
                print(
                    f"{setting} {model}: mse {statistics.mean(mse):.4f} mae {statistics.mean(mae):.4f} "
                    f"({len(seeds)} seeds, {minutes:.1f} min)",
                    flush=True,
                )
            baseline = min((statistics.mean(r[0]) for m, r in results.items() if m in BASELINES), default=None)
            for model, (mse, mae, minutes) in results.items():
                rows.append((setting, model, mse, mae, minutes, baseline))

    print("\n| setting | model | test MSE | test MAE | MSE / best baseline | seeds | minutes | published |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for setting, model, mse, mae, minutes, baseline in rows:
        spread = f" ± {statistics.stdev(mse):.4f}" if len(mse) > 1 else ""
        ratio = f"{statistics.mean(mse) / baseline:.3f}" if baseline else "-"
        print(
            f"| {setting.upper()} | {model} | {statistics.mean(mse):.4f}{spread} | {statistics.mean(mae):.4f} | "
            f"{ratio} | {len(mse)} | {minutes:.1f} | {PUBLISHED.get(setting, '')} |"
        )
    print("\nTargets (must beat / target / stretch):", {k.upper(): v for k, v in TARGETS.items()})


if __name__ == "__main__":
    main()
