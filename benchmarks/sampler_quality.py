"""Search quality per hour: the front's hypervolume after equal wall time, per sampler and seed.

    python benchmarks/sampler_quality.py --dataset fashion_mnist --data-dir ../shared/datasets --minutes 60
    python benchmarks/sampler_quality.py --quick      # tiny generated data, 1 minute per run

Each run is ``autocompress search ... --sampler S --seed N --timeout T`` in its own study folder
(its own model cache: no run profits from another), after the teacher is cached. Hypervolume
of (1 - validation accuracy, .tflite bytes), both minimised, against the fixed reference point
(1, --reference-kb KB), divided by the reference box: 1 would be a perfect model of 0 bytes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from optuna.trial import TrialState

from autocompress.report import hypervolume_2d
from autocompress.search.storage import load_study

QUICK_SPACE = Path(__file__).resolve().parent / "quick_space.toml"


def hypervolume(study_dir: Path, name: str, reference: tuple[float, float]) -> tuple[float, int]:
    study, _ = load_study(name, study_dir)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    points = [(1.0 - t.values[0], t.values[1]) for t in trials]
    return hypervolume_2d(points, reference) / (reference[0] * reference[1]), len(trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samplers", nargs="+", default=["tpe", "random"])
    parser.add_argument("--reference-kb", type=float, default=256)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="tiny generated data, 1 minute per run")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sampler-quality-"))
    extra = []
    if args.quick:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from helpers import write_bar_npz

        args.dataset, args.minutes, args.reference_kb = str(write_bar_npz(work / "bars.npz")), 1, 64
        extra = ["--epochs", "3", "--teacher-epochs", "3", "--config", str(QUICK_SPACE)]
    cache = args.cache_dir or str(work / "cache")
    subprocess.run([sys.executable, "-m", "autocompress", "teacher", "--dataset", args.dataset, "--data-dir",
                    args.data_dir, "--cache-dir", cache, *extra[:2]], check=True, capture_output=True)
    reference = (1.0, args.reference_kb * 1024)
    print(f"| sampler | seed | completed trials in {args.minutes:g} min | hypervolume |")
    print("| --- | --- | --- | --- |")
    results: dict[str, list[float]] = {}
    for sampler in args.samplers:
        for seed in args.seeds:
            name, out = f"{sampler}-{seed}", work / f"{sampler}-{seed}"
            subprocess.run([sys.executable, "-m", "autocompress", "search", "--dataset", args.dataset,
                            "--data-dir", args.data_dir, "--cache-dir", cache, "--sampler", sampler,
                            "--seed", str(seed), "--trials", "10000", "--timeout", str(60 * args.minutes),
                            "--study-name", name, "--out", str(out), "--quiet", *extra],
                           check=True, capture_output=True)
            volume, count = hypervolume(out, name, reference)
            results.setdefault(sampler, []).append(volume)
            print(f"| {sampler} | {seed} | {count} | {volume:.4f} |", flush=True)
    print()
    for sampler, volumes in results.items():
        print(f"{sampler}: median hypervolume {statistics.median(volumes):.4f} over {len(volumes)} seeds")


if __name__ == "__main__":
    main()
