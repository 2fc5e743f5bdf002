"""Microcontroller figures of a ``.tflite``: the tensor arena TensorFlow Lite Micro (TFLM) allocates
for it, whether TFLM's kernels reproduce LiteRT's predictions, the multiply-accumulates (MACs) of
its graph, its operators and its input/output quantization.

TFLM runs in a child process (``python -m autocompress.compress.micro``), so that a model its C++
code cannot handle fails the measurement, with the reason TFLM printed, instead of the worker.
The arena is the total of TFLM's recording allocator after one inference, rounded up to TFLM's
16-byte arena alignment; the child then runs the validation images in an arena of exactly that
size, so the figure is proven enough for ``kTensorArenaSize``.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autocompress.cache import scratch_folder

ARENA_ALIGNMENT = 16  # TFLM's MicroArenaBufferAlignment()
PROBE_ARENA = 256 * 1024 ** 2  # the arena the first, measuring, interpreter gets
AGREEMENT_IMAGES = 200  # validation images TFLM classifies (batch 1, reference kernels: a few ms each)
TIMEOUT_SECONDS = 600
_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


@dataclass(frozen=True)
class MicroRun:
    """What TFLM did with a file: its arena bytes and the share of images on which its class equals
    LiteRT's; or, when it cannot run the file, ``None`` for both and the ``reason``."""

    arena_bytes: int | None
    agreement: float | None
    reason: str | None = None


def aligned(size: int) -> int:
    return -(-size // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


def run(path: Path, x: np.ndarray, reference: np.ndarray) -> MicroRun:
    """Run the ``.tflite`` at ``path`` with TFLM on raw pixels ``x`` (its first
    :data:`AGREEMENT_IMAGES`) and compare its classes with ``reference`` (LiteRT's, for the same images)."""
    x, reference = x[:AGREEMENT_IMAGES], np.asarray(reference)[:AGREEMENT_IMAGES]
    with scratch_folder("tflm") as folder:
        images, answer, log = (folder / name for name in ("images.npy", "answer.json", "log.txt"))
        np.save(images, x)
        try:
            done = subprocess.run([sys.executable, "-m", __name__, str(path), str(images), str(answer), str(log)],
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            return MicroRun(None, None, f"TFLM did not finish {len(x)} images in {TIMEOUT_SECONDS} s")
        if not answer.exists():
            printed = _printed(log) or done.stderr.decode(errors="replace").strip().splitlines()[-1:]
            return MicroRun(None, None, f"TFLM crashed (exit code {done.returncode}): {' '.join(printed)}"[:500])
        outcome = json.loads(answer.read_text())
    if "reason" in outcome:
        return MicroRun(None, None, outcome["reason"])
    agreement = float(np.mean(np.asarray(outcome["classes"]) == reference))
    return MicroRun(outcome["arena_bytes"], agreement)


def _printed(log: Path) -> list[str]:
    """The lines TFLM printed, without source paths (``.../conv_common.cc Hybrid ...`` -> ``conv_common.cc Hybrid ...``)."""
    if not log.exists():
        return []
    return [re.sub(r"^\S*/", "", line.strip()) for line in log.read_text(errors="replace").splitlines() if line.strip()]


def _classify(path: str, images: np.ndarray, arena_size: int):
    """A TFLM interpreter of ``path`` in ``arena_size`` bytes, and its classes for ``images``."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(path, arena_size=arena_size)
    dtype = interpreter.get_input_details(0)["dtype"]
    classes = []
    for image in images:
        interpreter.set_input(image[None].astype(dtype), 0)
        interpreter.invoke()
        classes.append(int(np.argmax(interpreter.get_output(0))))
    return interpreter, classes


def _child(path: str, images: str, answer: str, log: str) -> None:
    """The child process: measure the arena, prove it suffices, classify; write ``answer`` (JSON).
    TFLM's C++ output (file descriptors 1 and 2) goes to ``log``."""
    libc = ctypes.CDLL(None)
    with open(log, "wb") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    x = np.load(images)
    try:
        probe, _ = _classify(path, x[:1], PROBE_ARENA)
        probe.print_allocations()
        libc.fflush(None)
        totals = _TOTAL.findall(Path(log).read_text(errors="replace"))
        if not totals:
            raise RuntimeError("TFLM printed no arena total")
        arena = aligned(int(totals[-1]))
        _, classes = _classify(path, x, arena)
        outcome = {"arena_bytes": arena, "classes": classes}
    except (RuntimeError, ValueError) as error:
        libc.fflush(None)
        printed = [line for line in _printed(Path(log)) if "RecordingMicroAllocator" not in line]
        outcome = {"reason": f"{error}: {' '.join(printed)}"[:500] if printed else str(error)}
    Path(answer).write_text(json.dumps(outcome))


# ---------------------------------------------------------------- the flatbuffer


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def _graph(path: Path):
    schema = _schema()
    model = schema.Model.GetRootAs(Path(path).read_bytes(), 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    return model, model.Subgraphs(0), names


def _opcode(model, operator) -> int:
    code = model.OperatorCodes(operator.OpcodeIndex())
    return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())


def operators(path: Path) -> tuple[str, ...]:
    """The builtin operators the model uses (e.g. ``CONV_2D``), in order of first use."""
    model, graph, names = _graph(path)
    return tuple(dict.fromkeys(names[_opcode(model, graph.Operators(i))] for i in range(graph.OperatorsLength())))


def resolver_call(operator: str) -> str:
    """The ``MicroMutableOpResolver`` method that registers ``operator``: ``CONV_2D`` -> ``AddConv2D``."""
    return "Add" + "".join(part if part[0].isdigit() else part.capitalize() for part in operator.split("_"))


def macs(path: Path) -> int:
    """Multiply-accumulates of one inference: conv, depthwise conv, transpose conv, fully connected
    and batch matmul ops (pooling, adds and activations count none)."""
    model, graph, names = _graph(path)

    def shape(index: int) -> list[int]:
        return [int(d) for d in graph.Tensors(index).ShapeAsNumpy()] if index >= 0 else []

    total = 0
    for i in range(graph.OperatorsLength()):
        operator = graph.Operators(i)
        name = names[_opcode(model, operator)]
        inputs, outputs = operator.InputsAsNumpy(), operator.OutputsAsNumpy()
        out = int(np.prod(shape(outputs[0]))) if len(outputs) else 0
        if name == "CONV_2D":  # filter [out channels, h, w, in channels / groups]
            total += out * int(np.prod(shape(inputs[1])[1:]))
        elif name == "DEPTHWISE_CONV_2D":  # filter [1, h, w, out channels]
            total += out * int(np.prod(shape(inputs[1])[1:3]))
        elif name == "FULLY_CONNECTED":  # weights [units, inputs]
            total += out * shape(inputs[1])[-1]
        elif name == "TRANSPOSE_CONV":  # inputs: output shape, filter [out channels, h, w, in channels], input
            total += int(np.prod(shape(inputs[2]))) * int(np.prod(shape(inputs[1])[:3]))
        elif name == "BATCH_MATMUL":
            total += out * shape(inputs[0])[-1]
    return total


def _quantization(graph, index: int) -> dict:
    tensor = graph.Tensors(index)
    dtypes = {value: name.lower() for name, value in vars(_schema().TensorType).items() if not name.startswith("_")}
    params = tensor.Quantization()
    scales = params.ScaleAsNumpy() if params is not None and params.ScaleLength() else None
    zeros = params.ZeroPointAsNumpy() if params is not None and params.ZeroPointLength() else None
    return {"dtype": dtypes[tensor.Type()], "shape": [int(d) for d in tensor.ShapeAsNumpy()],
            "scale": float(scales[0]) if scales is not None else None,
            "zero_point": int(zeros[0]) if zeros is not None else None}


def io_quantization(path: Path) -> dict:
    """The model's input and output tensors: dtype, shape, and (when quantized) scale and zero point,
    with ``real = scale * (stored - zero_point)``."""
    _, graph, _ = _graph(path)
    return {"input": _quantization(graph, int(graph.Inputs(0))), "output": _quantization(graph, int(graph.Outputs(0)))}


if __name__ == "__main__":
    _child(*sys.argv[1:5])
