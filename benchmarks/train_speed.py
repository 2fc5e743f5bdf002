"""Training speed of model families on this machine: seconds per batch and per epoch.

    python benchmarks/train_speed.py            # the table in docs/BENCHMARKS.md
    python benchmarks/train_speed.py --quick    # two small models

Times batches 5..30 of one `fit` call on random raw pixels (batch 128), after tracing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from autocompress._tf import keras, tf
from autocompress.models import build_model

CASES = [("cnn", (28, 28, 1), 1.0, 54_000), ("cnn", (28, 28, 1), 0.25, 54_000), ("resnet8", (32, 32, 3), 1.0, 45_000),
         ("resnet8", (32, 32, 3), 2.0, 45_000), ("paper-cifar-teacher", (32, 32, 3), 1.0, 45_000)]


class BatchTimer(keras.callbacks.Callback):
    def __init__(self, skip: int):
        super().__init__()
        self.skip, self.started, self.batches = skip, 0.0, 0

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.skip:
            self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.batches = batch + 1 - self.skip

    def seconds_per_batch(self) -> float:
        return (time.perf_counter() - self.started) / self.batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    cases = CASES[1:3] if args.quick else CASES
    batch, batches = 128, 12 if args.quick else 30
    print("| model | params | s / batch of 128 | s / epoch |")
    print("| --- | --- | --- | --- |")
    for name, shape, width, epoch_size in cases:
        model = build_model(name, shape, 10, width=width)
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        x = np.random.randint(0, 256, (batch * batches, *shape)).astype(np.float32)
        y = np.random.randint(0, 10, batch * batches)
        timer = BatchTimer(skip=5 if batches > 5 else 1)
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).prefetch(2), verbose=0, callbacks=[timer])
        per_batch = timer.seconds_per_batch()
        print(f"| {name} x{width:g} on {shape} | {model.count_params():,} | {per_batch:.3f} | "
              f"{per_batch * epoch_size / batch:.0f} |", flush=True)


if __name__ == "__main__":
    main()
