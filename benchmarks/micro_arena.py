"""Microcontroller figures of the students: flash bytes, TensorFlow Lite Micro's arena, its lower
bound (what ``--max-ram`` prunes with before training) and MACs, per student and width.

    python benchmarks/micro_arena.py                         # Fashion-MNIST and CIFAR-10 shapes, int8
    python benchmarks/micro_arena.py --quant none --widths 0.5

The files are stripped of names, as the built-in spaces' are. The models are untrained and
calibrated on random pixels: a file's bytes, arena and MACs depend on its shapes, not on its
weights' values (a trained model's file differs only in the weights).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402

from autocompress.compress import measure, micro, quantize  # noqa: E402
from autocompress.compress.config import CompressionConfig  # noqa: E402
from autocompress.models import build_model  # noqa: E402
from autocompress.compress.predict import predicted_arena_bytes  # noqa: E402

SHAPES = {"fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--students", default="cnn,dscnn,resnet8")
    parser.add_argument("--widths", default="0.25,0.5,1.0")
    parser.add_argument("--quant", default="int8")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| shape | student | width | quant | flash bytes | arena bytes | lower bound | bound / arena | MACs |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for shape_name in args.shapes.split(","):
        shape = SHAPES[shape_name]
        pixels = rng.integers(0, 256, (64, *shape), dtype=np.uint8)
        for student in args.students.split(","):
            for width in map(float, args.widths.split(",")):
                model = build_model(student, shape, 10, width=width)
                with tempfile.TemporaryDirectory() as folder:
                    path = Path(folder) / "model.tflite"
                    path.write_bytes(quantize.convert(model, args.quant, pixels, strip_names=True))
                    run = micro.run(path, pixels[:4], measure.predict(path, pixels[:4]))
                    bound = predicted_arena_bytes(CompressionConfig(student=student, width=width, quant=args.quant),
                                                  shape, 10)
                    arena = run.arena_bytes
                    ratio = f"{bound / arena:.2f}" if arena else "n/a"
                    print(f"| {shape_name} | {student} | {width:g} | {args.quant} | {path.stat().st_size:,} | "
                          f"{arena if arena is None else f'{arena:,}'} | {bound:,} | {ratio} | {micro.macs(path):,} |",
                          flush=True)


if __name__ == "__main__":
    main()
