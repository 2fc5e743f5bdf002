"""Search quality per hour: the front's hypervolume after equal wall time, per sampler and seed.

    python benchmarks/sampler_quality.py --dataset fashion_mnist --data-dir ../shared/datasets --minutes 60
    python benchmarks/sampler_quality.py --cache-dir ~/.cache/autocompress --epochs 3 --minutes 10 \
        --reference-kb 64     # the run in docs/BENCHMARKS.md: cached teacher, 3-epoch trials
    python benchmarks/sampler_quality.py --quick      # tiny generated data, 1 minute per run

Each run is ``autocompress search ... --sampler S --seed N --timeout T`` in its own study folder
(its own model cache: no run profits from another), after the teacher is cached. Hypervolume
of (1 - validation accuracy, .tflite bytes), both minimised, against the fixed reference point
(1, --reference-kb KB), divided by the reference box: 1 would be a perfect model of 0 bytes.
"""

from __future__ import annotations

import statistics
import subprocess
from pathlib import Path

from optuna.trial import TrialState

from autocompress.report import hypervolume_2d
from autocompress.search.storage import load_study
from search_setup import parser, prepare


def hypervolume(study_dir: Path, name: str, reference: tuple[float, float]) -> tuple[float, int, int]:
    """The normalised hypervolume, the completed trials and how many of them repeated an earlier one."""
    study, _ = load_study(name, study_dir)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    points = [(1.0 - t.values[0], t.values[1]) for t in trials]
    repeats = sum("repeats" in t.user_attrs for t in trials)
    return hypervolume_2d(points, reference) / (reference[0] * reference[1]), len(trials), repeats


def main() -> None:
    options = parser(__doc__.splitlines()[0], "fashion_mnist", "tiny generated data, 1 minute per run")
    options.add_argument("--minutes", type=float, default=60)
    options.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    options.add_argument("--samplers", nargs="+", default=["tpe", "random"])
    options.add_argument("--reference-kb", type=float, default=256)
    args = options.parse_args()
    setup = prepare(args, "sampler-quality")
    minutes, reference = (1, (1.0, 64 * 1024)) if args.quick else (args.minutes, (1.0, args.reference_kb * 1024))
    print(f"| sampler | seed | completed trials in {minutes:g} min | of them repeats | hypervolume |")
    print("| --- | --- | --- | --- | --- |")
    results: dict[str, list[float]] = {}
    for sampler in args.samplers:
        for seed in args.seeds:
            name, out = f"{sampler}-{seed}", setup.work / f"{sampler}-{seed}"
            subprocess.run(setup.search("--sampler", sampler, "--seed", str(seed), "--trials", "10000",
                                        "--timeout", str(60 * minutes), "--study-name", name, "--out", str(out)),
                           check=True, capture_output=True)
            volume, count, repeats = hypervolume(out, name, reference)
            results.setdefault(sampler, []).append(volume)
            print(f"| {sampler} | {seed} | {count} | {repeats} | {volume:.4f} |", flush=True)
    print()
    for sampler, volumes in results.items():
        print(f"{sampler}: median hypervolume {statistics.median(volumes):.4f} over {len(volumes)} seeds")


if __name__ == "__main__":
    main()
