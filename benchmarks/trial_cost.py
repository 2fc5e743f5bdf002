"""Trial cost: each stage's seconds, and the overhead ratio against plain tf_keras training.

    python benchmarks/trial_cost.py --dataset fashion_mnist --data-dir ../shared/datasets
    python benchmarks/trial_cost.py --quick     # tiny generated data, 3 epochs

For each configuration, ``--repeats`` trials run through the real pipeline, each with an empty
model cache (so the student is trained), interleaved with plain ``model.fit`` trainings of the
same student (Adam, sparse cross-entropy, same epochs and batch size, no augmentation): plain,
trial, plain, trial, ..., plain. Each fit and each trial runs in a fresh Python process, as the
search's trials run in fresh workers: in one long process the same ``fit`` took 2x as long after
the first trial. Only the fit or the trial is timed, not the process start or the data loading.
The overhead ratio is the median trial wall time over the median plain training. Target <= 1.15.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = [
    dict(student="dscnn", width=0.5, quant="int8", per_channel=False, strip_names=True),
    dict(student="cnn", width=0.25, quant="int8"),
    dict(student="cnn", width=0.5, quant="dynamic"),
]


def measure(kind: str, config_index: int, args: argparse.Namespace, work: Path) -> dict:
    """Time one plain fit or one trial of ``CONFIGS[config_index]`` in this process."""
    from autocompress._tf import keras
    from autocompress.api import make_context
    from autocompress.compress import pipeline
    from autocompress.compress.config import CompressionConfig
    from autocompress.data import load_dataset
    from autocompress.models import build_model

    config = CompressionConfig(**CONFIGS[config_index], epochs=args.epochs, batch_size=args.batch_size)
    dataset = load_dataset(args.dataset, args.data_dir)
    if kind == "plain":
        model = build_model(config.student, dataset.input_shape, dataset.num_classes, width=config.width)
        model.compile(keras.optimizers.Adam(config.learning_rate),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        started = time.perf_counter()
        model.fit(dataset.x_train, dataset.y_train, batch_size=config.batch_size, epochs=config.epochs, verbose=0)
        return {"seconds": time.perf_counter() - started, "label": config.label()}
    context = make_context(dataset, work / "cache")
    started = time.perf_counter()
    result = pipeline.run(config, context, work / "trial")
    return {"seconds": time.perf_counter() - started, "stages": result.stage_seconds}


def in_fresh_process(kind: str, config_index: int, args: argparse.Namespace, work: Path) -> dict:
    """``measure`` in a new Python process with an empty work folder; its JSON result."""
    folder = Path(tempfile.mkdtemp(prefix=f"{kind}{config_index}-", dir=work))
    done = subprocess.run([sys.executable, __file__, "--measure", kind, "--config", str(config_index),
                           "--dataset", args.dataset, "--data-dir", args.data_dir, "--epochs", str(args.epochs),
                           "--batch-size", str(args.batch_size), "--work", str(folder)],
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="trials per configuration (each between plain fits)")
    parser.add_argument("--quick", action="store_true", help="tiny generated data, 3 epochs")
    parser.add_argument("--measure", choices=["plain", "trial"], help=argparse.SUPPRESS)
    parser.add_argument("--config", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.config, args, args.work)))
        return
    work = Path(tempfile.mkdtemp(prefix="trial-cost-"))
    if args.quick:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from helpers import write_bar_npz

        args.dataset, args.epochs, args.batch_size = str(write_bar_npz(work / "bars.npz")), 3, 32

    print("| configuration | trial wall s | distill | prune | quantize | convert | measure | plain fit s | ratio of medians |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ratios = []
    for i in range(len(CONFIGS)):
        first = in_fresh_process("plain", i, args, work)
        plains, trials, stages = [first["seconds"]], [], []
        for _ in range(args.repeats):
            trial = in_fresh_process("trial", i, args, work)
            trials.append(trial["seconds"])
            stages.append(trial["stages"])
            plains.append(in_fresh_process("plain", i, args, work)["seconds"])
        ratios.append(statistics.median(trials) / statistics.median(plains))
        stage = lambda name: f"{statistics.median(s.get(name, 0.0) for s in stages):.1f}"  # noqa: E731
        listed = lambda seconds: ", ".join(f"{s:.1f}" for s in seconds)  # noqa: E731
        print(f"| `{first['label']}` | {listed(trials)} | {stage('distill')} | {stage('prune')} | {stage('quantize')} | "
              f"{stage('convert')} | {stage('measure')} | {listed(plains)} | {ratios[-1]:.2f} |", flush=True)
    print(f"\nmedian overhead ratio: {statistics.median(ratios):.2f} (target <= 1.15)")


if __name__ == "__main__":
    main()
