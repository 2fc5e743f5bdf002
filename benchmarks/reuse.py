"""Reuse: wall time of the same search with the model caches, and without them.

    python benchmarks/reuse.py --dataset fashion_mnist --data-dir ../shared/datasets --trials 100
    python benchmarks/reuse.py --quick       # tiny generated data, 12 trials

Both runs use the random sampler with the same seed, so they draw the same configurations,
and full fidelity, so no trial is stopped early in one run and not the other. "Without" is
``--cache-limit 0B``: every trained student and pruned model is deleted after its trial and a
repeated configuration runs again, so nothing is reused (the teacher stays cached in both).
Target: with / without <= 0.4.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from optuna.trial import TrialState

from autocompress.search.storage import load_study
from search_setup import Setup, parser, prepare


def search(setup: Setup, out: Path, *limit: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    subprocess.run(setup.search("--sampler", "random", "--seed", "0", "--full-fidelity",
                                "--trials", str(setup.trials),
                                "--study-name", "reuse", "--out", str(out), *limit), check=True, capture_output=True)
    study, _ = load_study("reuse", out)
    trials_done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    reused = sum(bool(t.user_attrs["reused"]) for t in trials_done)
    repeats = sum("repeats" in t.user_attrs for t in trials_done)
    return time.perf_counter() - started, reused, repeats


def main() -> None:
    args = parser(__doc__.splitlines()[0], "fashion_mnist", "tiny generated data, 12 trials", trials=100).parse_args()
    setup = prepare(args, "reuse", quick_trials=12)
    with_caches, reused, repeats = search(setup, setup.work / "with")
    without, _, _ = search(setup, setup.work / "without", "--cache-limit", "0B")
    print(f"{setup.trials} trials: with caches {with_caches:.0f} s ({reused} trials trained no student, {repeats} "
          f"of them repeats of an earlier trial's configuration), "
          f"without {without:.0f} s; ratio {with_caches / without:.2f} (target <= 0.4)")


if __name__ == "__main__":
    main()
