"""tunelab's M96 recipe against the official SegRNN code on the same CPU: whole processes, two epochs and the test.

    python bench/segrnn_speed.py --data-dir data --segrnn-dir ../SegRNN    # a checkout of github.com/lss-1138/SegRNN

Each side is a new process, timed from start to exit, the sides interleaved and repeated, the median kept:
the official `run_longExp.py` with the arguments of its ETTh1 L = 96 script (scripts/SegRNN/Lookback_96/
etth1.sh: GRU-512 over segments of 24, PMF decoding, channel ids, batch 256, lr 1e-3) at `--train_epochs 2`
(each epoch scores val and test, then the test), and `python train.py experiment=etth1_m96_hand
trainer.max_epochs=2` (each epoch validates, then the best checkpoint's val and test), both with
`--threads` torch threads. The ratio tunelab / official is the share of the official time tunelab needs (below
1: faster). Without a checkout the bench says so and measures nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from driver import QUIET, ROOT  # bench/ is on sys.path when a bench script runs

OFFICIAL = [
    *["--is_training", "1", "--data_path", "ETTh1.csv", "--model_id", "ETTh1_96_96", "--model", "SegRNN"],
    *["--data", "ETTh1", "--features", "M", "--seq_len", "96", "--pred_len", "96", "--seg_len", "24"],
    *["--enc_in", "7", "--d_model", "512", "--dropout", "0.5", "--train_epochs", "2", "--patience", "10"],
    *["--rnn_type", "gru", "--dec_way", "pmf", "--channel_id", "1", "--loss", "mse", "--itr", "1"],
    *["--batch_size", "256", "--learning_rate", "0.001"],
]


def timed(command: list[str], cwd: Path, threads: int) -> float:
    """Wall seconds of one process, from start to exit; a failure stops the bench with its output's tail."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(command[:3])} ... failed:\n{(result.stdout + result.stderr)[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding ETT-small/")
    parser.add_argument("--segrnn-dir", type=Path, default=ROOT.parent / "SegRNN", help="the official checkout")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of both sides")
    parser.add_argument("--overrides", nargs="*", default=[], help="more train.py overrides (a smoke run)")
    args = parser.parse_args()
    script = args.segrnn_dir.resolve() / "run_longExp.py"
    if not script.is_file():
        print(f"tunelab / official SegRNN: not measured: no {script} (a checkout of github.com/lss-1138/SegRNN)")
        return
    data = args.data_dir.resolve() / "ETT-small"
    times: dict[str, list[float]] = {"official": [], "tunelab": []}
    with tempfile.TemporaryDirectory() as tmp:  # both write their checkpoints and results here
        for n in range(args.repeats):
            official = [sys.executable, str(script), "--root_path", f"{data}/", *OFFICIAL]
            times["official"].append(timed(official, Path(tmp), args.threads))
            tunelab = [sys.executable, str(ROOT / "train.py"), "experiment=etth1_m96_hand", "trainer.max_epochs=2"]
            tunelab += [f"paths.data_dir={data.parent}", f"hydra.run.dir={tmp}/tunelab{n}", *QUIET, *args.overrides]
            times["tunelab"].append(timed(tunelab, ROOT, args.threads))
            print(
                f"repeat {n}: official {times['official'][-1]:.1f} s, tunelab {times['tunelab'][-1]:.1f} s", flush=True
            )
    official, tunelab = (statistics.median(times[side]) for side in ("official", "tunelab"))
    print(
        f"\n{args.threads} torch threads, median of {args.repeats}: official {official:.1f} s, tunelab {tunelab:.1f} s"
    )
    print(f"tunelab / official SegRNN: {tunelab / official:.2f} (the share of the official time tunelab needs)")


if __name__ == "__main__":
    main()
