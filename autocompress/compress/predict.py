"""Lower bounds on what a configuration's exported file needs, from its untrained student alone
(built, and channel-pruned, in a fraction of a second): the weights' bytes and TFLite Micro's arena."""

from __future__ import annotations

import functools
import math

from autocompress.compress.config import CompressionConfig


def _untrained(config: CompressionConfig, input_shape: tuple[int, ...], num_classes: int, own=None):
    """``config``'s student, untrained, after channel pruning: the shapes of the model it exports, or
    for global scope the smallest it can export. Global pruning's share of each layer follows the
    trained weights (a layer whose filters training left uneven loses more), so the untrained
    weights do not bound it; every prunable channel group down to its one channel does. ``own``:
    the user's model (student ``"model"``, trained already: its shapes are what count)."""
    from autocompress.compress.prune import prune_channels
    from autocompress.own_model import build_student

    model = build_student(config.student, input_shape, num_classes, width=config.width, own=own)
    if config.prunes and config.prune_structure == "channel":
        local = config.prune_scope == "local"
        model = prune_channels(model, config.sparsity if local else 1.0, "local", config.prune_layers)
    return model


@functools.lru_cache(maxsize=64)  # the --max-size check and the multi-fidelity rung both ask, per trial
def predicted_weight_bytes(config: CompressionConfig, input_shape: tuple[int, ...], num_classes: int,
                           own=None) -> int:
    """A lower bound on the ``.tflite`` size: the weights alone, after channel pruning, at the quantized width."""
    bytes_per_weight = {"none": 4, "float16": 2}.get(config.quant, 1)
    return int(_untrained(config, input_shape, num_classes, own).count_params() * bytes_per_weight)


@functools.lru_cache(maxsize=64)
def predicted_arena_bytes(config: CompressionConfig, input_shape: tuple[int, ...], num_classes: int,
                          own=None) -> int:
    """A lower bound on TFLite Micro's arena: the largest inputs-plus-output of one conv, dense,
    pooling or add op, which TFLM's planner must hold at once (1 byte an activation in full-integer
    models, else 4; layers the converter fuses into these ops add nothing)."""
    from autocompress._tf import keras

    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense, keras.layers.MaxPooling2D,
             keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D, keras.layers.Add)
    bytes_per_value = 1 if config.quant in ("int8", "qat") else 4

    def values(tensors) -> int:
        return sum(math.prod(t.shape[1:]) for t in (tensors if isinstance(tensors, list) else [tensors]))

    layers = [layer for layer in _untrained(config, input_shape, num_classes, own).layers if isinstance(layer, kinds)]
    return bytes_per_value * max(values(layer.input) + values(layer.output) for layer in layers)
