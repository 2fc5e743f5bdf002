"""Reuse: wall time of the same search with the model caches, and without them.

    python benchmarks/reuse.py --dataset fashion_mnist --data-dir ../shared/datasets --trials 100
    python benchmarks/reuse.py --quick       # tiny generated data, 12 trials

Both runs use the random sampler with the same seed, so they draw the same configurations,
and full fidelity, so no trial is stopped early in one run and not the other. "Without" is
``--cache-limit 0B``: every trained student and pruned model is deleted after its trial, so
nothing is reused (the teacher stays cached in both). Target: with / without <= 0.4.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from optuna.trial import TrialState

from autocompress.search.storage import load_study

QUICK_SPACE = Path(__file__).resolve().parent / "quick_space.toml"


def search(args, cache: str, out: Path, *limit: str) -> tuple[float, int]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autocompress", "search", "--dataset", args.dataset, "--data-dir",
                    args.data_dir, "--cache-dir", cache, "--sampler", "random", "--seed", "0", "--full-fidelity",
                    "--trials", str(args.trials), "--study-name", "reuse", "--out", str(out), "--quiet",
                    *args.extra, *limit], check=True, capture_output=True)
    study, _ = load_study("reuse", out)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    reused = sum("student" in t.user_attrs["reused"] for t in trials)
    return time.perf_counter() - started, reused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--quick", action="store_true", help="tiny generated data, 12 trials")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="reuse-"))
    args.extra = []
    if args.quick:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from helpers import write_bar_npz

        args.dataset, args.trials = str(write_bar_npz(work / "bars.npz")), 12
        args.extra = ["--epochs", "3", "--teacher-epochs", "3", "--config", str(QUICK_SPACE)]
    cache = args.cache_dir or str(work / "cache")
    subprocess.run([sys.executable, "-m", "autocompress", "teacher", "--dataset", args.dataset, "--data-dir",
                    args.data_dir, "--cache-dir", cache, *args.extra[:2]], check=True, capture_output=True)
    with_caches, reused = search(args, cache, work / "with")
    without, _ = search(args, cache, work / "without", "--cache-limit", "0B")
    print(f"{args.trials} trials: with caches {with_caches:.0f} s ({reused} trials trained no student), "
          f"without {without:.0f} s; ratio {with_caches / without:.2f} (target <= 0.4)")


if __name__ == "__main__":
    main()
