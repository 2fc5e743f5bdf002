"""Is a student continued from E1 to E2 epochs as good as one trained E2 epochs in one go?

    python benchmarks/continuation.py --dataset fashion_mnist --student dscnn --width 0.5 --e1 5 --e2 10 --seeds 0 1
    python benchmarks/continuation.py --quick        # tiny generated data: checks that the script runs
    python benchmarks/continuation.py --summarize LOG  # the summary of a printed table

For each seed, three ``autocompress compress --quant int8`` runs, each in its own process: E1 epochs,
then E2 epochs with the same cache (which continues the E1 training: E2 - E1 more epochs), and E2
epochs in a fresh cache (one go). It prints the int8 ``.tflite``'s test accuracy and the seconds of
the student's training stage for each, then a summary: the mean and spread of each kind over the
seeds, and the per-seed differences continued minus one go (their mean, standard deviation, standard
error and t = mean / standard error).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
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


def summarize(table: str) -> str:
    """The summary of a printed table: per kind, mean, range and sd over seeds; continued minus one go per seed."""
    rows = re.findall(r"^\| (\d+) \| (.+?) \| ([\d.]+)% \|", table, flags=re.M)
    kinds: dict[str, dict[int, float]] = {}
    for seed, label, accuracy in rows:
        kind = "continued" if "continued" in label else "one go" if "one go" in label else "first budget"
        kinds.setdefault(kind, {})[int(seed)] = float(accuracy)
    lines = [f"{kind}: mean {statistics.mean(v.values()):.2f}% (range {min(v.values()):.2f}-{max(v.values()):.2f}, "
             f"sd {statistics.stdev(v.values()) if len(v) > 1 else 0:.2f}) over {len(v)} seeds"
             for kind, v in kinds.items()]
    paired = [kinds["continued"][s] - kinds["one go"][s] for s in kinds.get("continued", {}) if s in kinds.get("one go", {})]
    if paired:
        mean, spread = statistics.mean(paired), statistics.stdev(paired) if len(paired) > 1 else 0.0
        error = spread / len(paired) ** 0.5
        lines.append(f"continued - one go per seed: {', '.join(f'{d:+.2f}' for d in paired)}; mean {mean:+.2f}, "
                     f"sd {spread:.2f}, standard error {error:.2f}" + (f", t {mean / error:+.1f}" if error else ""))
    return "\n".join(lines) or "no rows of this script's table found"


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
    parser.add_argument("--summarize", metavar="LOG", help="print the summary of a table this script printed, and stop")
    args = parser.parse_args()
    if args.summarize:
        log = Path(args.summarize)
        if not log.is_file():
            print(f"error: --summarize {log}: no such file; give the path of this script's printed output", file=sys.stderr)
            raise SystemExit(2)
        print(summarize(log.read_text()))
        return
    with tempfile.TemporaryDirectory(prefix="continuation-") as folder:
        work = Path(folder)
        if args.quick:
            from helpers import write_bar_npz

            args.dataset = str(write_bar_npz(work / "bars.npz"))
            args.student, args.width, args.e1, args.e2, args.seeds = "cnn", 0.5, 5, 10, [0]
        table = ["| seed | training | int8 test acc | student training s |", "| --- | --- | --- | --- |"]
        print("\n".join(table))
        for seed in args.seeds:
            shared, fresh = work / f"shared-{seed}", work / f"fresh-{seed}"
            runs = [(f"{args.e1} epochs", shared, args.e1), (f"{args.e1} -> {args.e2} epochs (continued)", shared, args.e2),
                    (f"{args.e2} epochs in one go", fresh, args.e2)]
            for label, cache, epochs in runs:
                result = compress(args.dataset, args.data_dir, cache, work / f"out-{seed}-{label[:6].strip()}-{epochs}",
                                  args.student, args.width, epochs, seed)
                table.append(f"| {seed} | {label} | {100 * result['test_accuracy']:.2f}% | "
                             f"{result['stage_seconds'].get('distill', 0):.0f} |")
                print(table[-1], flush=True)
        print(summarize("\n".join(table)))


if __name__ == "__main__":
    main()
