"""Trial cost: each stage's seconds, and the overhead ratio against plain tf_keras training.

    python benchmarks/trial_cost.py --dataset fashion_mnist --data-dir ../shared/datasets
    python benchmarks/trial_cost.py --quick     # tiny generated data, 3 epochs

For each configuration, ``--repeats`` trials run through the real pipeline, each with an empty
model cache (so the student is trained), interleaved with plain ``model.fit`` trainings of the
same student (Adam, sparse cross-entropy, same epochs and batch size, no augmentation) in the
same process: plain, trial, plain, trial, ..., plain. The same ``fit`` has varied by up to 2x
within one run on this shared 2-core machine, so the overhead ratio is the median trial wall time
over the median plain training of that configuration. Target <= 1.15.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from autocompress._tf import keras
from autocompress.api import make_context
from autocompress.compress import pipeline
from autocompress.compress.config import CompressionConfig
from autocompress.data import load_dataset
from autocompress.models import build_model

CONFIGS = [
    dict(student="dscnn", width=0.5, quant="int8", per_channel=False, strip_names=True),
    dict(student="cnn", width=0.25, quant="int8"),
    dict(student="cnn", width=0.5, quant="dynamic"),
]


def plain_fit_seconds(config: CompressionConfig, dataset) -> float:
    keras.backend.clear_session()
    model = build_model(config.student, dataset.input_shape, dataset.num_classes, width=config.width)
    model.compile(keras.optimizers.Adam(config.learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    started = time.perf_counter()
    model.fit(dataset.x_train, dataset.y_train, batch_size=config.batch_size, epochs=config.epochs, verbose=0)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="trials per configuration (each between plain fits)")
    parser.add_argument("--quick", action="store_true", help="tiny generated data, 3 epochs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trial-cost-"))
    if args.quick:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from helpers import write_bar_npz

        args.dataset, args.epochs, args.batch_size = str(write_bar_npz(work / "bars.npz")), 3, 32
    started = time.perf_counter()
    dataset = load_dataset(args.dataset, args.data_dir)
    data_seconds = time.perf_counter() - started

    print(f"data loaded in {data_seconds:.1f} s\n")
    print("| configuration | trial wall s | distill | prune | quantize | convert | measure | plain fit s | ratio of medians |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    ratios = []
    for i, overrides in enumerate(CONFIGS):
        config = CompressionConfig(**overrides, epochs=args.epochs, batch_size=args.batch_size)
        plains, trials, stages = [plain_fit_seconds(config, dataset)], [], []
        for repeat in range(args.repeats):
            keras.backend.clear_session()
            context = make_context(dataset, work / f"cache{i}-{repeat}")
            started = time.perf_counter()
            result = pipeline.run(config, context, work / f"trial{i}-{repeat}")
            trials.append(time.perf_counter() - started)
            stages.append(result.stage_seconds)
            plains.append(plain_fit_seconds(config, dataset))
        ratios.append(statistics.median(trials) / statistics.median(plains))
        stage = lambda name: f"{statistics.median(s.get(name, 0.0) for s in stages):.1f}"  # noqa: E731
        listed = lambda seconds: ", ".join(f"{s:.1f}" for s in seconds)  # noqa: E731
        print(f"| `{config.label()}` | {listed(trials)} | {stage('distill')} | {stage('prune')} | {stage('quantize')} | "
              f"{stage('convert')} | {stage('measure')} | {listed(plains)} | {ratios[-1]:.2f} |", flush=True)
    print(f"\nmedian overhead ratio: {statistics.median(ratios):.2f} (target <= 1.15)")


if __name__ == "__main__":
    main()
