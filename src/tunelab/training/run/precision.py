"""What this machine's CPU does with reduced precision."""

from __future__ import annotations

import functools
import logging

import lightning as L
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from omegaconf import DictConfig

log = logging.getLogger(__name__)
NATIVE = "bf16-native"  # trainer.precision: bf16-mixed where the hardware has bf16, else 32-true


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX); without, oneDNN emulates it.

    torch has no public query; `torch.cpu`'s private probes are the ones its own kernels dispatch on.
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def device_precision(trainer_cfg: DictConfig) -> str:
    """The Trainer's precision for `trainer.precision`: `bf16-native` is bf16-mixed where the device multiplies bf16
    in hardware (a CUDA GPU that supports it, a CPU with AVX512-BF16 or AMX) and 32-true elsewhere, where emulated
    bf16 is slower than 32-bit; every other value is Lightning's own."""
    precision = str(trainer_cfg.get("precision"))
    if precision != NATIVE:
        return precision
    accelerator = trainer_cfg.get("accelerator", "auto")
    cuda = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    native = torch.cuda.is_bf16_supported() if cuda else native_bf16()
    return "bf16-mixed" if native else "32-true"


def warn_emulated_bf16(trainer: L.Trainer) -> None:
    """Say once when a run asks for bf16 on a CPU that emulates it: there it is slower than 32-bit, not faster
    (a bare GRU-512 step measured 20x slower on an AVX2-only CPU; 1.6-2.2x faster with AVX512-BF16)."""
    if "bf16" in str(trainer.precision) and isinstance(trainer.accelerator, CPUAccelerator) and not native_bf16():
        log.warning(
            f"precision={trainer.precision} on a CPU without AVX512-BF16 or AMX: bf16 is emulated here and likely "
            "slower than precision=32 (python bench/precision.py measures both)"
        )
