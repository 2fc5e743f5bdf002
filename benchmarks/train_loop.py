"""The training loop alone: plain tf_keras ``model.fit`` against ``training.train``, with and
without flips, alternated in one process.

    python benchmarks/train_loop.py --data-dir ../shared/datasets     # Fashion-MNIST, dscnn x0.5, 1 epoch, 2 rounds
    python benchmarks/train_loop.py --quick                           # tiny generated data
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from autocompress._tf import keras
from autocompress.data import load_dataset
from autocompress.models import build_model
from autocompress.training import TrainingConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny generated data")
    args = parser.parse_args()
    if args.quick:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from helpers import write_bar_npz

        args.dataset = str(write_bar_npz(Path(tempfile.mkdtemp(prefix="train-loop-")) / "bars.npz"))
    dataset = load_dataset(args.dataset, args.data_dir)

    def fresh_model():
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        return build_model("dscnn", dataset.input_shape, dataset.num_classes, width=0.5)

    def plain() -> None:
        model = fresh_model()
        model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(dataset.x_train, dataset.y_train, batch_size=128, epochs=args.epochs, verbose=0)

    def ours(augment: tuple[str, ...]):
        def fit() -> None:
            train(fresh_model(), dataset.x_train, dataset.y_train, dataset.num_classes,
                  TrainingConfig(epochs=args.epochs, batch_size=128, augment=augment))
        return fit

    cases = {"plain model.fit": plain, "train, flips": ours(("flip",)), "train": ours(())}
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fit in cases.items():
            started = time.perf_counter()
            fit()
            seconds[name].append(time.perf_counter() - started)
    print(f"{args.epochs} epoch(s), batch 128, dscnn x0.5, {args.rounds} rounds\n")
    print("| loop | seconds | median |\n| --- | --- | --- |")
    for name, values in seconds.items():
        print(f"| {name} | {', '.join(f'{v:.2f}' for v in values)} | {statistics.median(values):.2f} |")


if __name__ == "__main__":
    main()
