"""Measure an exported ``.tflite`` file by running it with LiteRT: accuracy, bytes, latency."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from autocompress.quiet import native_stderr_dropped

THREADS = 2


def file_sizes(path: Path) -> tuple[int, int]:
    """(bytes on disk, bytes after gzip -9): the second shows what unstructured zeros buy."""
    data = Path(path).read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=9, mtime=0))


def _interpreter(path: Path, batch: int) -> tuple[Interpreter, dict, dict]:
    with native_stderr_dropped():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
        interpreter = Interpreter(model_path=str(path), num_threads=THREADS)
        entry = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(entry["index"], [batch, *entry["shape"][1:]])
        interpreter.allocate_tensors()
    return interpreter, interpreter.get_input_details()[0], interpreter.get_output_details()[0]


def outputs(path: Path, x: np.ndarray, batch: int = 250) -> np.ndarray:
    """The raw outputs (logits) of the ``.tflite`` at ``path`` on raw pixels ``x`` (uint8 NHWC)."""
    interpreter, entry, out = _interpreter(path, batch)
    rows = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        if len(chunk) < batch:  # pad the last batch to the allocated shape
            chunk = np.concatenate([chunk, np.zeros((batch - len(chunk), *chunk.shape[1:]), chunk.dtype)])
        interpreter.set_tensor(entry["index"], chunk.astype(entry["dtype"]))
        interpreter.invoke()
        rows.append(interpreter.get_tensor(out["index"])[: len(x) - start])
    return np.concatenate(rows)


def predict(path: Path, x: np.ndarray, batch: int = 250) -> np.ndarray:
    """Class predictions of the ``.tflite`` at ``path`` on raw pixels ``x`` (uint8 NHWC)."""
    return np.argmax(outputs(path, x, batch), axis=1)


def accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict(path, x) == y))


def latency_ms(path: Path, image: np.ndarray, runs: int = 50) -> float:
    """Median milliseconds for one image (batch 1), after a warm-up run."""
    interpreter, entry, _ = _interpreter(path, 1)
    interpreter.set_tensor(entry["index"], image[None].astype(entry["dtype"]))
    interpreter.invoke()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - started)
    return round(1000.0 * float(np.median(times)), 4)
