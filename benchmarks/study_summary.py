"""What a finished study cost and found: trial states, wall time, trial times, the front, and the
best test accuracy within size budgets (issue 5's and 7's figures).

    python benchmarks/study_summary.py --study fashion_mnist [--study-dir studies/fashion_mnist]

Prints markdown. Wall time runs from the first trial's start to the last trial's end (the
teacher, trained or loaded before the first trial, is not in it).
"""

from __future__ import annotations

import argparse
import statistics

from optuna.trial import TrialState

from autocompress.search.front import front_rows
from autocompress.search.storage import load_study

BUDGETS_KB = (16, 32, 64, 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True)
    parser.add_argument("--study-dir", default=None)
    args = parser.parse_args()
    study, _ = load_study(args.study, args.study_dir)

    trials = study.get_trials(deepcopy=False)
    ended = [t for t in trials if t.datetime_complete is not None]
    states = {s.name: sum(t.state == s for t in trials) for s in TrialState if any(t.state == s for t in trials)}
    seconds = [(t.datetime_complete - t.datetime_start).total_seconds() for t in ended]
    wall = (max(t.datetime_complete for t in ended) - min(t.datetime_start for t in ended)).total_seconds()
    print(f"trials: {len(trials)} ({', '.join(f'{n} {k.lower()}' for k, n in states.items())}); "
          f"wall {wall:.0f} s ({wall / 60:.1f} min); trial seconds median {statistics.median(seconds):.0f}, "
          f"max {max(seconds):.0f}\n")

    rows = front_rows(study)
    print("| trial | configuration | val acc | test acc | bytes | %/KB (test) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['trial']} | `{row['label']}` | {100 * row['val_accuracy']:.2f}% | "
              f"{100 * row['test_accuracy']:.2f}% | {row['tflite_bytes']:,} | {row['efficiency']:.2f} |")

    # chosen by validation accuracy, as a user picking from the front would; test reported
    print("\n| size budget | front trial (best val acc within it) | val acc | test acc | bytes |")
    print("| --- | --- | --- | --- | --- |")
    for budget in BUDGETS_KB:
        fits = [r for r in rows if r["tflite_bytes"] <= budget * 1024]
        best = max(fits, key=lambda r: r["val_accuracy"], default=None)
        print(f"| <= {budget} KB | " + (f"{best['trial']}: `{best['label']}` | {100 * best['val_accuracy']:.2f}% | "
                                         f"{100 * best['test_accuracy']:.2f}% | {best['tflite_bytes']:,} |"
                                         if best else "none | | | |"))


if __name__ == "__main__":
    main()
