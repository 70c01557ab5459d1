"""A callback for bench/startup.py: at the end of the first training step, print the seconds since the
bench started the process (STARTUP_T0, unix time) and end the process; nothing after it is timed."""

from __future__ import annotations

import os
import time

from lightning.pytorch.callbacks import Callback


class FirstStep(Callback):
    def on_train_batch_end(self, *args: object) -> None:
        print(f"first step after {time.time() - float(os.environ['STARTUP_T0']):.3f} s", flush=True)
        os._exit(0)  # the rest of the run is not what this bench measures
