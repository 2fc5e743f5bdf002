"""Arm Ethos-U NPU estimates of a full-integer ``.tflite``: Vela (Arm's compiler, ``ethos-u-vela``)
compiles the file for an accelerator configuration (e.g. ``ethos-u55-128``) and estimates its
inference time, cycles and SRAM use, and how many operators it leaves to the CPU.

Vela runs in a child process (``python -m ethosu.vela``), as TFLite Micro does in
:mod:`.micro`: a file it cannot compile fails the estimate, with Vela's reason, not the run.
Its default system configuration for the accelerator sets the clock (500 MHz for the Ethos-U55)
and memories; the figures are Vela's performance estimate, not a measurement on silicon.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from autocompress.cache import scratch_folder
from autocompress.errors import UserError

TIMEOUT_SECONDS = 300
_CPU_OPERATORS = re.compile(r"CPU operators = (\d+)")


@dataclass(frozen=True)
class NpuEstimate:
    """Vela's estimate for one file on ``accelerator``; when Vela cannot compile it, ``None``
    for the figures and the ``reason``."""

    accelerator: str
    inference_ms: float | None = None
    cycles: int | None = None
    sram_bytes: int | None = None
    cpu_operators: int | None = None  # operators Vela leaves to the host CPU
    reason: str | None = None


def accelerators() -> list[str]:
    """The accelerator configurations Vela knows (one line, exit 2, if Vela is not installed)."""
    try:
        from ethosu.vela.architecture_features import Accelerator
    except ImportError:
        raise UserError("NPU estimates need Arm's Vela: pip install ethos-u-vela") from None
    return Accelerator.member_list()


def check_accelerator(accelerator: str) -> str:
    """``accelerator``, if Vela knows it; else one line naming those it knows."""
    known = accelerators()
    if accelerator not in known:
        raise UserError(f"--npu must be one of {', '.join(known)} (got {accelerator!r})")
    return accelerator


def estimate(path: Path, accelerator: str, quant: str) -> NpuEstimate:
    """Compile the ``.tflite`` at ``path`` (quantized as ``quant``) with Vela for ``accelerator``."""
    if quant not in ("int8", "qat"):
        return NpuEstimate(accelerator, reason=f"the Ethos-U runs full-integer (int8) models; this file is {quant}")
    with scratch_folder("vela") as out:
        try:
            done = subprocess.run([sys.executable, "-m", "ethosu.vela", str(path), "--accelerator-config", accelerator,
                                   "--output-dir", out], capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            return NpuEstimate(accelerator, reason=f"Vela did not finish in {TIMEOUT_SECONDS} s")
        summaries = list(Path(out).glob("*_summary_*.csv"))
        if done.returncode != 0 or not summaries:
            lines = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
            return NpuEstimate(accelerator, reason=f"Vela could not compile it: {lines[-1][:300]}")
        with open(summaries[0], newline="") as handle:
            row = next(csv.DictReader(handle))
    cpu = _CPU_OPERATORS.search(done.stdout)
    return NpuEstimate(accelerator, inference_ms=1000 * float(row["inference_time"]), cycles=int(float(row["cycles_total"])),
                       sram_bytes=round(1024 * float(row["sram_memory_used"])),
                       cpu_operators=int(cpu.group(1)) if cpu else None)
