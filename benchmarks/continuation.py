"""Is a student continued from E1 to E2 epochs as good as one trained E2 epochs in one go?

    python benchmarks/continuation.py --dataset fashion_mnist --student dscnn --width 0.5 --e1 5 --e2 10 --seeds 0 1
    python benchmarks/continuation.py --quick        # tiny generated data: checks that the script runs

For each seed, three ``autocompress compress --quant int8`` runs, each in its own process: E1 epochs,
then E2 epochs with the same cache (which continues the E1 training: E2 - E1 more epochs), and E2
epochs in a fresh cache (one go). It prints the int8 ``.tflite``'s test accuracy and the seconds of
the student's training stage for each. Two seeds show the noise between equal trainings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def compress(dataset: str, data_dir: str, cache: Path, out: Path, student: str, width: float, epochs: int,
             seed: int) -> dict:
    command = [sys.executable, "-m", "autocompress", "compress", "--dataset", dataset, "--data-dir", data_dir,
               "--cache-dir", str(cache), "--out", str(out), "--student", student, "--width", str(width),
               "--epochs", str(epochs), "--seed", str(seed), "--quant", "int8", "--strip-names"]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads((out / "result.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--student", default="dscnn")
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--e1", type=int, default=5)
    parser.add_argument("--e2", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="continuation-") as folder:
        work = Path(folder)
        if args.quick:
            from helpers import write_bar_npz

            args.dataset = str(write_bar_npz(work / "bars.npz"))
            args.student, args.width, args.e1, args.e2, args.seeds = "cnn", 0.5, 5, 10, [0]
        print("| seed | training | int8 test acc | student training s |")
        print("| --- | --- | --- | --- |")
        for seed in args.seeds:
            shared, fresh = work / f"shared-{seed}", work / f"fresh-{seed}"
            runs = [(f"{args.e1} epochs", shared, args.e1), (f"{args.e1} -> {args.e2} epochs (continued)", shared, args.e2),
                    (f"{args.e2} epochs in one go", fresh, args.e2)]
            for label, cache, epochs in runs:
                result = compress(args.dataset, args.data_dir, cache, work / f"out-{seed}-{label[:6].strip()}-{epochs}",
                                  args.student, args.width, epochs, seed)
                print(f"| {seed} | {label} | {100 * result['test_accuracy']:.2f}% | "
                      f"{result['stage_seconds'].get('distill', 0):.0f} |", flush=True)


if __name__ == "__main__":
    main()
