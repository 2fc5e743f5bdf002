"""What a finished study cost and found: trial states, wall time, trial times, the front (with
TFLite Micro's arena and MACs), the best test accuracy within size budgets (issue 5's and 7's
figures), and how well the arena's lower bound (what ``--max-ram`` prunes with) predicted the
measured arena (issue 18).

    python benchmarks/study_summary.py --study fashion_mnist [--study-dir studies/fashion_mnist] [--npu ethos-u55-128]

With ``--npu`` the front's full-integer files are also compiled with Arm's Vela for that Ethos-U
configuration (its estimate of inference time and SRAM), for studies searched without ``--npu``.

Prints markdown. Wall time runs from the first trial's start to the last trial's end (the
teacher, trained or loaded before the first trial, is not in it).
"""

from __future__ import annotations

import argparse
import statistics

from ai_edge_litert.interpreter import Interpreter
from optuna.trial import TrialState

from autocompress.compress import npu
from autocompress.compress.config import CompressionConfig
from autocompress.compress.predict import predicted_arena_bytes
from autocompress.search.artifacts import FILES
from autocompress.search.front import front_rows
from autocompress.search.record import TrialRecord
from autocompress.search.storage import StudyLocation, load_study

BUDGETS_KB = (16, 32, 64, 128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", required=True)
    parser.add_argument("--study-dir", default=None)
    parser.add_argument("--npu", default=None, help="an Ethos-U configuration, e.g. ethos-u55-128")
    args = parser.parse_args()
    study, location = load_study(args.study, args.study_dir)

    trials = study.get_trials(deepcopy=False)
    ended = [t for t in trials if t.datetime_complete is not None]
    if not ended:
        raise SystemExit(f"study {args.study!r} has {len(trials)} trial(s) and none has ended yet; try again later")
    states = {s.name: sum(t.state == s for t in trials) for s in TrialState if any(t.state == s for t in trials)}
    seconds = [(t.datetime_complete - t.datetime_start).total_seconds() for t in ended]
    wall = (max(t.datetime_complete for t in ended) - min(t.datetime_start for t in ended)).total_seconds()
    repeats = sum(TrialRecord.of(t).repeats is not None for t in trials)
    print(f"trials: {len(trials)} ({', '.join(f'{n} {k.lower()}' for k, n in states.items())}; "
          f"{repeats} repeat(s) of an earlier configuration, not counted in --trials); "
          f"wall {wall:.0f} s ({wall / 60:.1f} min); trial seconds median {statistics.median(seconds):.0f}, "
          f"max {max(seconds):.0f}\n")

    rows = front_rows(study)
    print("| trial | configuration | val acc | test acc | bytes | %/KB (test) | arena bytes | MACs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['trial']} | `{row['label']}` | {100 * row['val_accuracy']:.2f}% | "
              f"{100 * row['test_accuracy']:.2f}% | {row['tflite_bytes']:,} | {row['efficiency']:.2f} | "
              f"{_count(row['arena_bytes'])} | {_count(row['macs'])} |")

    # chosen by validation accuracy, as a user picking from the front would; test reported
    print("\n| size budget | front trial (best val acc within it) | val acc | test acc | bytes |")
    print("| --- | --- | --- | --- | --- |")
    for budget in BUDGETS_KB:
        fits = [r for r in rows if r["tflite_bytes"] <= budget * 1024]
        best = max(fits, key=lambda r: r["val_accuracy"], default=None)
        print(f"| <= {budget} KB | " + (f"{best['trial']}: `{best['label']}` | {100 * best['val_accuracy']:.2f}% | "
                                         f"{100 * best['test_accuracy']:.2f}% | {best['tflite_bytes']:,} |"
                                         if best else "none | | | |"))

    _arena_bounds([t for t in trials if t.state == TrialState.COMPLETE], location)
    if args.npu:
        _npu_estimates(rows, study, args.npu, location)


def _npu_estimates(rows: list[dict], study, accelerator: str, location: StudyLocation) -> None:
    """Vela's estimate for each full-integer file of the front."""
    records = {t.number: TrialRecord.of(t) for t in study.get_trials(deepcopy=False)}
    print(f"\n| trial | configuration | bytes | arena bytes | {accelerator} ms (Vela) | NPU SRAM bytes | CPU operators |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        record = records[row["trial"]]
        tflite = location.trial_dir(row["trial"]) / FILES["tflite"]
        estimate = npu.estimate(str(tflite), accelerator, record.config["quant"])
        if estimate.reason is None:
            print(f"| {row['trial']} | `{row['label']}` | {row['tflite_bytes']:,} | {_count(row['arena_bytes'])} | "
                  f"{estimate.inference_ms:.3f} | {estimate.sram_bytes:,} | {estimate.cpu_operators} |")


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def _arena_bounds(complete, location: StudyLocation) -> None:
    """The lower bound on the arena beside the arena TFLite Micro measured, for every completed trial
    (its file read from the study's folder: the record holds the path relative to where the search ran)."""
    ratios = []
    for trial in complete:
        record = TrialRecord.of(trial)
        if record.arena_bytes is None or record.repeats is not None:
            continue
        bound = record.predicted_min_arena_bytes
        if bound is None:  # a study without --max-ram: compute it as the search would have
            shape = tuple(record.input_contract["shape"][1:])
            tflite = location.trial_dir(trial.number) / FILES["tflite"]
            classes = Interpreter(model_path=str(tflite)).get_output_details()[0]["shape"][-1]
            bound = predicted_arena_bytes(CompressionConfig.from_dict(record.config), shape, int(classes))
        ratios.append(bound / record.arena_bytes)
    if ratios:
        print(f"\narena lower bound / measured arena over {len(ratios)} trials TFLite Micro ran: min {min(ratios):.2f}, "
              f"median {statistics.median(ratios):.2f}, max {max(ratios):.2f}; "
              f"{sum(r > 1 for r in ratios)} above 1 (a bound above the arena would prune feasible models)")


if __name__ == "__main__":
    main()
