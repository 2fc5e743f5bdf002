"""Conversion time: TFLite's Keras path (``from_keras_model``: it writes a SavedModel first, for the
file's signature) against ours (the traced call converted directly, the signature then written
into the file), both set the same way by ``quantize.configure``.

    python benchmarks/conversion.py --data-dir ../shared/datasets     # Fashion-MNIST, dscnn x0.5
    python benchmarks/conversion.py --quick                           # random pixels, cnn x0.25

Per quantization mode: the median seconds of ``--repeats`` conversions by each path, and the
largest difference between the two files' outputs on test images (0 means the same outputs).
The model is untrained: conversion time does not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402

from autocompress._tf import tf  # noqa: E402
from autocompress.compress import measure, quantize  # noqa: E402
from autocompress.models import build_model  # noqa: E402

MODES = ("none", "dynamic", "float16", "int8", "qat")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="random 16x16 pixels and a cnn x0.25, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        x_train = np.random.default_rng(0).integers(0, 256, (300, 16, 16, 1), dtype=np.uint8)
        x_test, classes, student, width, repeats = x_train[:100], 10, "cnn", 0.25, 1
    else:
        from autocompress.data import load_dataset

        dataset = load_dataset(args.dataset, args.data_dir, args.cache_dir)
        x_train, x_test, classes = dataset.x_train, dataset.x_test[:1000], dataset.num_classes
        student, width, repeats = "dscnn", 0.5, args.repeats
    float_model = build_model(student, x_train.shape[1:], classes, width=width)
    folder = Path(tempfile.mkdtemp(prefix="conversion-"))
    print(f"{student} x{width}, {float_model.count_params():,} parameters, median of {repeats} conversions")
    print("| mode | TFLite's Keras path s | ours s (direct, signature written) | max output difference |")
    print("| --- | --- | --- | --- |")
    for mode in MODES:
        model = quantize.prepare_qat(float_model, sparse=False) if mode == "qat" else float_model
        seconds, paths = {}, {}
        ways = {"keras": lambda: quantize.configure(tf.lite.TFLiteConverter.from_keras_model(model), mode,
                                                    x_train).convert(),
                "ours": lambda: quantize.convert(model, mode, x_train)}
        for way, conversion in ways.items():
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                flatbuffer = conversion()
                times.append(time.perf_counter() - started)
            seconds[way], paths[way] = statistics.median(times), folder / f"{mode}-{way}.tflite"
            paths[way].write_bytes(flatbuffer)
        difference = np.abs(measure.outputs(paths["keras"], x_test) - measure.outputs(paths["ours"], x_test)).max()
        print(f"| {mode} | {seconds['keras']:.2f} | {seconds['ours']:.2f} | {difference:g} |")


if __name__ == "__main__":
    main()
