"""bf16 autocast against 32-bit on the CPU: the training step of the ETTh1 recipes at both precisions, side by side.

    python bench/precision.py --data-dir data                      # etth1_m96_hand and etth1_s96_hand, 1 torch thread
    python bench/precision.py --data-dir data --threads 2 --recipes etth1_m96_hand

Each recipe is built from conf/ as `python train.py experiment=<recipe>` builds it; a few training steps
(forward and loss under the Trainer's own precision plugin, backward, Adam step: what
`precision=bf16-mixed` changes) are timed after a warm-up step, the precisions interleaved and repeated;
the median step time of each is printed with the ratio 32-bit / bf16 (> 1: bf16 is faster). The CPU's bf16
support is printed first: without AVX512-BF16 or AMX, bf16 matrix products are emulated.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from epoch_time import Stepper  # bench/ is on sys.path when a bench script runs

from tunelab.training.run.precision import native_bf16

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("32-true", "bf16-mixed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data", help="folder holding ETT-small/")
    parser.add_argument("--recipes", nargs="+", default=["etth1_m96_hand", "etth1_s96_hand"], help="experiment configs")
    parser.add_argument("--seq-len", type=int, default=96, help="input length L of every recipe")
    parser.add_argument("--batches", type=int, default=3, help="timed training steps per row and repeat")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the recipes' benches use 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"CPU bf16: {'native (AVX512-BF16 or AMX)' if native_bf16() else 'emulated (no AVX512-BF16, no AMX)'}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} torch threads, L = {args.seq_len}\n")

    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes:
            steppers = {
                precision: Stepper(
                    [f"experiment={recipe}"], args.seq_len, args.data_dir.resolve(), Path(tmp), args.batches, precision
                )
                for precision in PRECISIONS
            }
            times: dict[str, list[float]] = {precision: [] for precision in PRECISIONS}
            for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits both alike
                for precision, stepper in steppers.items():
                    times[precision].append(stepper.seconds_per_step())
            step = {precision: statistics.median(times[precision]) for precision in PRECISIONS}
            for precision in PRECISIONS:
                print(f"{recipe:12s} {precision:10s} {step[precision] * 1000:9.1f} ms/step")
            print(f"{recipe:12s} ratio 32-true / bf16-mixed: {step['32-true'] / step['bf16-mixed']:.2f}\n", flush=True)


if __name__ == "__main__":
    main()
