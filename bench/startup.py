"""Start-up of `python train.py`: the commands that only compose a config, and a training run to its first step.

    python bench/startup.py [--repeats 5] [--against OTHER_CHECKOUT]

Each command is a new process, timed from just before it is started: `--cfg job`, `--help`, a command
refused by a config check (`optimizer.lr=-1`), and the default run (`python train.py`: LSTM on ETTh1)
to the end of its first training step, where a probe callback (bench/first_step_probe.py) prints the
time and ends the process. Repeats are interleaved and the median is printed. `--against` times another
checkout of tunelab (its own `.venv` when it has one) in the same loop, so that before and after are
measured side by side on this noisy machine, and prints after / before.
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

ROOT = Path(__file__).resolve().parents[1]
PROBE = "+callbacks.first_step._target_=first_step_probe.FirstStep"  # bench/ is on the job's PYTHONPATH
# name: (arguments, the exit code that command ends with)
COMMANDS = {
    "--cfg job": (["--cfg", "job"], 0),
    "--help": (["--help"], 0),
    "refused (optimizer.lr=-1)": (["optimizer.lr=-1"], 1),
    "default run, to its first step": (["trainer.enable_progress_bar=false", PROBE], 0),
}


def python_of(checkout: Path) -> str:
    """The interpreter for a checkout: its own .venv when it has one (a checkout installed on its own)."""
    venv = checkout / ".venv" / "bin" / "python"
    return str(venv) if venv.is_file() else sys.executable


def seconds(checkout: Path, args: list[str], exit_code: int, out: Path) -> float:
    """Wall time of `python train.py ARGS` in `checkout`, or to its first step when the probe reports one."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "bench"), "STARTUP_T0": repr(time.time())}
    started = time.perf_counter()
    result = subprocess.run(
        [python_of(checkout), str(checkout / "train.py"), f"hydra.run.dir={out}", *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != exit_code:
        raise SystemExit(f"{checkout}/train.py {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    reported = [line for line in result.stdout.splitlines() if line.startswith("first step after ")]
    return float(reported[0].split()[3]) if reported else elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--against", type=Path, help="another checkout of tunelab, timed in the same loop")
    args = parser.parse_args()
    checkouts = {"this": ROOT, **({"against": args.against.resolve()} if args.against else {})}
    times: dict[tuple[str, str], list[float]] = {(c, n): [] for c in checkouts for n in COMMANDS}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # interleaved: the machine's noise hits every row alike
            for i, (name, (command, exit_code)) in enumerate(COMMANDS.items()):
                for checkout, path in checkouts.items():
                    out = Path(tmp) / f"{checkout}-{repeat}-{i}"
                    times[checkout, name].append(seconds(path, command, exit_code, out))
    print(f"median of {args.repeats} interleaved repeats, seconds from process start")
    for name in COMMANDS:
        row = {c: statistics.median(times[c, name]) for c in checkouts}
        ratio = f"  after / before: {row['this'] / row['against']:.2f}" if "against" in row else ""
        measured = "  ".join(f"{c} {v:6.2f} s" for c, v in row.items())
        print(f"{name:32s} {measured}{ratio}")


if __name__ == "__main__":
    main()
