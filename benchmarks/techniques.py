"""Each technique alone and combined, one `autocompress compress` command per row (issue 4's table).

    python benchmarks/techniques.py --dataset fashion_mnist --data-dir ../shared/datasets --epochs 8
    python benchmarks/techniques.py --quick      # tiny generated data, a couple of minutes

Prints a markdown table: accuracy (test, measured on the .tflite), bytes, gzip bytes, efficiency
(test accuracy % per KB) and wall seconds of each command, with the command itself. Rows sharing
a student reuse it from the cache, as a search would: their seconds are pruning/quantization only.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROWS = [
    ("plain student (float32)", []),
    ("KD only", ["--alpha", "0.5", "--temperature", "4"]),
    ("pruning only: unstructured local 50%", ["--sparsity", "0.5", "--prune-scope", "local"]),
    ("pruning only: unstructured global 50%", ["--sparsity", "0.5", "--prune-scope", "global"]),
    ("pruning only: 2:4", ["--prune-structure", "2:4"]),
    ("pruning only: channel local 50%", ["--sparsity", "0.5", "--prune-structure", "channel"]),
    ("pruning only: channel global 50%", ["--sparsity", "0.5", "--prune-structure", "channel", "--prune-scope", "global"]),
    ("quantization only: dynamic PTQ", ["--quant", "dynamic"]),
    ("quantization only: float16 PTQ", ["--quant", "float16"]),
    ("quantization only: int8 PTQ", ["--quant", "int8"]),
    ("quantization only: QAT", ["--quant", "qat"]),
    ("KD -> channel 50% -> int8 PTQ", ["--alpha", "0.5", "--temperature", "4", "--sparsity", "0.5",
                                       "--prune-structure", "channel", "--quant", "int8"]),
    ("KD -> channel 50% -> QAT", ["--alpha", "0.5", "--temperature", "4", "--sparsity", "0.5",
                                  "--prune-structure", "channel", "--quant", "qat"]),
    ("KD -> unstructured 50% -> QAT (sparsity-preserving)", ["--alpha", "0.5", "--temperature", "4",
                                                            "--sparsity", "0.5", "--quant", "qat"]),
]


def run(label: str, extra: list[str], base: list[str], out: Path) -> dict:
    command = ["autocompress", "compress", *base, *extra, "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autocompress", *command[1:]], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
    result = json.loads((out / "result.json").read_text())
    shown = " ".join(shlex.quote(part) for part in command if not part.startswith(str(out.parent)))
    return {"label": label, "seconds": time.perf_counter() - started, "command": shown.replace(" --out", ""), **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--student", default="cnn")
    parser.add_argument("--width", default="0.5")
    parser.add_argument("--epochs", default="8")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="tiny generated data, 1 epoch")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="techniques-"))
    if args.quick:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from helpers import write_bar_npz

        args.dataset, args.epochs = str(write_bar_npz(work / "bars.npz")), "1"
        args.cache_dir = args.cache_dir or str(work / "cache")
    base = ["--dataset", args.dataset, "--data-dir", args.data_dir, "--student", args.student,
            "--width", args.width, "--epochs", args.epochs]
    if args.cache_dir:
        base += ["--cache-dir", args.cache_dir]
    print("| technique | test acc | bytes | gzip bytes | params (non-zero) | efficiency %/KB | seconds | command |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for i, (label, extra) in enumerate(ROWS):
        row = run(label, extra, base, work / f"row{i}")
        print(f"| {label} | {100 * row['test_accuracy']:.2f} | {row['tflite_bytes']:,} | {row['gzip_bytes']:,} | "
              f"{row['params']:,} ({row['nonzero_params']:,}) | {row['efficiency']:.2f} | {row['seconds']:.0f} | "
              f"`{row['command']}` |", flush=True)


if __name__ == "__main__":
    main()
