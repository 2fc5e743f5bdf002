"""What every ``autocompress`` command shares: the typer app, the consoles, the common options."""

from __future__ import annotations

import os
import re
from typing import Optional

import typer
from rich.console import Console

from autocompress.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find the smallest compressed image classifier that keeps the accuracy you need.")
LOG_COLUMNS = 200  # rich's 80 columns, where the output is a log or a pipe, wrap a front's labels into columns of words


def _console(stderr: bool = False) -> Console:
    """Rich's console, as wide as ``LOG_COLUMNS`` where the output is not a terminal (unless $COLUMNS says)."""
    made = Console(stderr=stderr)
    if not made.is_terminal and "COLUMNS" not in os.environ:
        made.width = LOG_COLUMNS
    return made


console = _console()
errors = _console(stderr=True)
INTERRUPTED = "interrupted: completed trials are saved; rerun the same command to resume"

# Choice options (--quant, --sampler, --pick, ...) stay str, checked by CompressionConfig, SearchSettings
# and Selection, not Enums: those checks serve the Python API too, and a bad value is then one
# "error: ..." line saying what to choose (exit 2), where click's choice error is a usage box.
DataDir = typer.Option(None, "--data-dir", help="Folder with local dataset files (also $AUTOCOMPRESS_DATA_DIR).")
CacheDir = typer.Option(None, "--cache-dir", help="Cache folder (default ~/.cache/autocompress, or $AUTOCOMPRESS_CACHE_DIR).")
NpuOpt = typer.Option(None, "--npu", help="Also estimate each full-integer file on an Arm Ethos-U NPU with Vela: "
                                          "its configuration, e.g. ethos-u55-128 (inference ms, cycles, SRAM).")
PrecisionOpt = typer.Option("auto", "--precision", help="Training precision: auto (per model, bfloat16 mixed precision "
                            "where the processor has native bfloat16 and a few timed steps are faster in it, else "
                            "float32), float32 or bfloat16.")
ModelPath = typer.Option(None, "--model", help="Your trained Keras model (.keras, .h5 or SavedModel folder; Keras 3 or "
                                               "tf_keras) to compress, as student 'model'; also the teacher unless --teacher.")
InputScale = typer.Option(1.0, "--input-scale", help="Your --model takes pixels (0-255) * this + --input-offset, "
                                                     "e.g. 0.00392157 for [0, 1]; 1 = raw pixels.")
InputOffset = typer.Option(0.0, "--input-offset", help="See --input-scale, e.g. -1 with --input-scale 0.00784314 for [-1, 1].")
DatasetArg = typer.Option(..., "--dataset", help="mnist, fashion_mnist, cifar10, cifar100, or a path to an .npz, image folder or archive.")


def parse_size(text: Optional[str]) -> Optional[int]:
    """'100KB' -> 102400 bytes (B, KB, MB; 1 KB = 1024 B)."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(B|KB|KIB|MB|MIB|GB|GIB)?\s*", text.upper())
    if not match:
        raise UserError(f"cannot read size {text!r}; write it like 100KB, 0.5MB or 20000B")
    factor = {"B": 1, None: 1, "KB": 1024, "KIB": 1024, "MB": 1024 ** 2, "MIB": 1024 ** 2,
              "GB": 1024 ** 3, "GIB": 1024 ** 3}[match.group(2)]
    return int(float(match.group(1)) * factor)
