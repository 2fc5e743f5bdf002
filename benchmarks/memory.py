"""Memory: peak resident memory of a search, and its trend over the trials.

    python benchmarks/memory.py --dataset cifar10 --data-dir ../shared/datasets --trials 20
    python benchmarks/memory.py --quick      # tiny generated data, 8 trials

Runs ``autocompress search`` (one worker) and samples the resident memory (VmRSS) of it and
its children every second. Prints the peak, the memory when each trial ended, and the slope
of a least-squares line through those (MB per trial): no growth means a slope near 0.
Target: peak <= 3 GB.
"""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from optuna.trial import TrialState

from autocompress.search.storage import load_study
from search_setup import parser, prepare


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants, in MB."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total / 1024


def main() -> None:
    args = parser(__doc__.splitlines()[0], "cifar10", "tiny generated data, 8 trials", trials=20).parse_args()
    setup = prepare(args, "memory", quick_trials=8)
    process = subprocess.Popen(setup.search("--trials", str(setup.trials), "--study-name", "memory", "--out",
                                            str(setup.work / "study")),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []
    while process.poll() is None:
        samples.append((time.time(), tree_rss_mb(process.pid)))
        time.sleep(1.0)
    if process.returncode != 0:
        raise SystemExit(f"search failed:\n{process.stderr.read()[-3000:]}")

    study, _ = load_study("memory", setup.work / "study")
    ends = sorted(t.datetime_complete.timestamp() for t in study.get_trials(deepcopy=False)
                  if t.state != TrialState.RUNNING and t.datetime_complete)
    at_end = [[mb for when, mb in samples if when <= end][-1] for end in ends if end >= samples[0][0]]
    slope = float(np.polyfit(np.arange(len(at_end)), at_end, 1)[0]) if len(at_end) >= 2 else float("nan")
    print(f"{len(ends)} trials, {len(samples)} samples; peak {max(mb for _, mb in samples):.0f} MB (target <= 3072); "
          f"slope over trials {slope:+.1f} MB/trial")
    print("resident MB when each trial ended: " + ", ".join(f"{mb:.0f}" for mb in at_end))
    started, ended = (datetime.fromtimestamp(samples[i][0]) for i in (0, -1))
    print(f"started {started:%H:%M:%S}, ended {ended:%H:%M:%S}")


if __name__ == "__main__":
    main()
