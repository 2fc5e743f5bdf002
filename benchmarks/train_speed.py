"""Training speed of model families on this machine: seconds per batch and per epoch, and the
achieved arithmetic rate against the processor's peak.

    python benchmarks/train_speed.py                          # the table in docs/BENCHMARKS.md
    python benchmarks/train_speed.py --quick                  # two small models
    python benchmarks/train_speed.py --precision bfloat16     # the same under mixed_bfloat16

Times batches 5..30 of one `fit` call on random raw pixels (batch 128), after tracing. A training
step costs about 3x the forward multiply-accumulates (forward, and two for the backward pass), 2
FLOP each. The peak is cores x clock x FLOP per cycle: 32 for float32 on two 256-bit FMA units
(AVX2, as on AMD Zen 3), 64 with AVX-512 (and twice that in bfloat16 with ``avx512_bf16``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from autocompress import precision
from autocompress._tf import keras, tf
from autocompress.models import build_model

CASES = [("cnn", (28, 28, 1), 1.0, 54_000), ("cnn", (28, 28, 1), 0.25, 54_000), ("resnet8", (32, 32, 3), 1.0, 45_000),
         ("dscnn", (28, 28, 1), 0.5, 54_000), ("mobilenetv2", (32, 32, 3), 1.0, 45_000),
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


def forward_macs(model: keras.Model) -> int:
    """Multiply-accumulates of one image's forward pass through the convolutions and dense layers."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            per_pixel = kh * kw * (c_in if isinstance(layer, keras.layers.DepthwiseConv2D) else c_in * c_out)
            total += h * w * per_pixel
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def peak_gflops(flop_per_cycle: int) -> float:
    """Cores x clock (GHz, from /proc/cpuinfo) x FLOP per cycle."""
    import os

    mhz = [float(line.split(":")[1]) for line in open("/proc/cpuinfo") if line.startswith("cpu MHz")]
    return (os.cpu_count() or 1) * (sum(mhz) / len(mhz)) / 1000 * flop_per_cycle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--flop-per-cycle", type=int, default=32, help="per core: 32 for float32 on AVX2 FMA x2")
    args = parser.parse_args()
    cases = CASES[1:3] if args.quick else CASES
    batch, batches = 128, 12 if args.quick else 30
    peak = peak_gflops(args.flop_per_cycle)
    print(f"precision {args.precision}; peak {peak:.0f} GFLOP/s ({args.flop_per_cycle} FLOP/cycle/core)")
    print("| model | params | forward MACs | s / batch of 128 | s / epoch | GFLOP/s | share of peak |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, shape, width, epoch_size in cases:
        with precision.policy(args.precision):
            model = build_model(name, shape, 10, width=width)
        model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        x = np.random.randint(0, 256, (batch * batches, *shape)).astype(np.float32)
        y = np.random.randint(0, 10, batch * batches)
        timer = BatchTimer(skip=5 if batches > 5 else 1)
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).prefetch(2), verbose=0, callbacks=[timer])
        per_batch = timer.seconds_per_batch()
        macs = forward_macs(model)
        gflops = 3 * 2 * macs * batch / per_batch / 1e9
        print(f"| {name} x{width:g} on {shape} | {model.count_params():,} | {macs / 1e6:.1f}M | {per_batch:.3f} | "
              f"{per_batch * epoch_size / batch:.0f} | {gflops:.1f} | {100 * gflops / peak:.0f}% |", flush=True)


if __name__ == "__main__":
    main()
