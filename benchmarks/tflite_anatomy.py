"""Where the bytes of a ``.tflite`` file go: tensor data, quantization parameters, the rest.

    python benchmarks/tflite_anatomy.py studies/NAME/trials/00006/model.tflite [...]

Quantization parameters are counted as the flatbuffer stores them: a float32 scale and an int64
zero point per channel (per-channel files) or per tensor. "Rest" is the graph itself (operators,
tensor shapes, vector headers and alignment) plus any names or metadata.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tensorflow.lite.tools import flatbuffer_utils  # noqa: E402

SCALE_BYTES, ZERO_POINT_BYTES = 4, 8


def anatomy(path: Path) -> dict[str, int]:
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(path.read_bytes()))
    data = sum(len(buffer.data) for buffer in model.buffers if buffer.data is not None)
    channels = quant = 0
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            params = tensor.quantization
            if params is None or params.scale is None:
                continue
            zero_points = params.zeroPoint if params.zeroPoint is not None else ()
            channels += len(params.scale)
            quant += len(params.scale) * SCALE_BYTES + len(zero_points) * ZERO_POINT_BYTES
    size = path.stat().st_size
    return {"bytes": size, "tensor data": data, "quantization params": quant, "scales": channels,
            "rest": size - data - quant}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args()
    print("| file | bytes | tensor data | quantization params (scales) | rest |")
    print("| --- | --- | --- | --- | --- |")
    for path in args.files:
        a = anatomy(path)
        print(f"| `{path}` | {a['bytes']:,} | {a['tensor data']:,} | {a['quantization params']:,} ({a['scales']:,}) "
              f"| {a['rest']:,} |")


if __name__ == "__main__":
    main()
