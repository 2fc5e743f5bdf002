#!/usr/bin/env python
"""Check an exported model from its model card alone: run ``model.tflite`` on the test split.

Usage: python scripts/run_exported.py path/to/model.json [--data-dir D] [--dataset NAME_OR_PATH]

Knows nothing of autocompress but ``model.json`` and ``autocompress.data.load_dataset``; runs
the model with numpy and ai-edge-litert only. Prints the card's test accuracy and the one
measured here, and exits with 1 if they differ by more than 0.1 point.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from autocompress.data import load_dataset

TOLERANCE = 0.001
BATCH = 100


def predict(model: Path, images: np.ndarray) -> np.ndarray:
    """Class indices for ``images`` (raw uint8 NHWC pixels), fed in fixed-size batches."""
    interpreter = Interpreter(model_path=str(model))
    entry = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(entry["index"], [BATCH, *entry["shape"][1:]])
    interpreter.allocate_tensors()
    entry, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    classes = []
    for start in range(0, len(images), BATCH):
        chunk = images[start : start + BATCH]
        padded = np.zeros((BATCH, *images.shape[1:]), dtype=entry["dtype"])
        padded[: len(chunk)] = chunk
        interpreter.set_tensor(entry["index"], padded)
        interpreter.invoke()
        classes.append(np.argmax(interpreter.get_tensor(out["index"]), axis=1)[: len(chunk)])
    return np.concatenate(classes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("card", type=Path, help="the export's model.json")
    parser.add_argument("--data-dir", default=None, help="folder with local dataset files")
    parser.add_argument("--dataset", default=None, help="dataset name or path (default: the card's)")
    args = parser.parse_args(argv)

    card = json.loads(args.card.read_text())
    dataset = load_dataset(args.dataset or card["dataset"]["load_as"], args.data_dir)
    measured = float(np.mean(predict(args.card.parent / "model.tflite", dataset.x_test) == dataset.y_test))
    recorded = card["test_accuracy"]
    print(f"card test accuracy:     {100 * recorded:.2f}%")
    print(f"measured test accuracy: {100 * measured:.2f}% ({len(dataset.x_test)} images)")
    if abs(measured - recorded) > TOLERANCE:
        print(f"MISMATCH: the gap is {100 * abs(measured - recorded):.2f} points (> {100 * TOLERANCE:.1f})")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
