"""Conversion to TFLite: float32, dynamic-range, float16, full-integer int8 PTQ, or QAT.

Full-integer models take ``uint8`` raw pixels (the 0-255 values a camera gives) and return
float32 logits; every other mode takes float32 raw pixels. The uint8 input's quantization says
just that (scale 1, zero point 0: real value = pixel), so TFLite's documented input recipe
(``q = x / scale + zero_point`` on the model's real input, the raw pixels) feeds the pixels
unchanged; the students' ``x / 127.5 - 1`` stays inside the graph, as its ``Rescaling`` layer.
"""

from __future__ import annotations

import warnings

import numpy as np

from autocompress._tf import keras, tf
from autocompress.quiet import native_stderr_dropped
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

# Layers that TFMOT's default 8-bit scheme knows. The Rescaling that normalises raw pixels
# is not among them: it gets an output-only config, so its int8 range is learnt too.
QAT_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense, keras.layers.BatchNormalization,
              keras.layers.ReLU, keras.layers.Activation, keras.layers.Add, keras.layers.MaxPooling2D,
              keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D, keras.layers.Flatten,
              keras.layers.Dropout)


def representative_data(x_train: np.ndarray, count: int = 256, seed: int = 0):
    """A generator of single images (raw pixels) for int8 calibration: an all-0 and an all-255
    image (so the input's range is exactly the pixels'), then training images."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(x_train), size=min(count, len(x_train)), replace=False)
    extremes = np.stack([np.zeros(x_train.shape[1:]), np.full(x_train.shape[1:], 255.0)])

    def generate():
        for image in [*extremes, *x_train[picks]]:
            yield [image[None].astype(np.float32)]

    return generate


def prepare_qat(model: keras.Model, sparse: bool) -> keras.Model:
    """Wrap ``model`` for quantization-aware training (weights kept); ``sparse`` preserves its zeros.
    TFMOT is imported here, not with this module: it adds seconds to every worker's start."""
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit.default_8bit_quantize_configs import (  # noqa: E501
        Default8BitOutputQuantizeConfig,
    )

    quant_api = tfmot.quantization.keras

    def annotate(layer):
        clone = layer.__class__.from_config(layer.get_config())
        if isinstance(layer, keras.layers.Rescaling):
            return quant_api.quantize_annotate_layer(clone, Default8BitOutputQuantizeConfig())
        return quant_api.quantize_annotate_layer(clone) if isinstance(layer, QAT_LAYERS) else clone

    annotated = keras.models.clone_model(model, clone_function=annotate)
    for original, clone in zip(model.layers, annotated.layers):
        if original.get_weights():
            getattr(clone, "layer", clone).set_weights(original.get_weights())
    scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme() if sparse else None
    with quant_api.quantize_scope({"Default8BitOutputQuantizeConfig": Default8BitOutputQuantizeConfig}):
        quantized = quant_api.quantize_apply(annotated, scheme) if scheme else quant_api.quantize_apply(annotated)
    _pin_pixel_range(quantized)
    return quantized


def _pin_pixel_range(model: keras.Model) -> None:
    """Start the input quantizer's range at the pixels' 0-255. It keeps the extremes of every batch
    it sees, which raw pixels never pass, so the uint8 input is exactly scale 1, zero point 0
    (as in int8 PTQ), whatever values the training images happen to reach."""
    from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer

    for layer in model.layers:
        if isinstance(layer, QuantizeLayer) and layer.input is model.inputs[0]:
            for weight in layer.weights:
                if weight.name.endswith(("_min:0", "_max:0")):
                    weight.assign(255.0 if weight.name.endswith("_max:0") else 0.0)


def convert(model: keras.Model, mode: str, x_train: np.ndarray, per_channel: bool = True,
            strip_names: bool = False) -> bytes:
    """The ``.tflite`` flatbuffer of ``model`` in quantization ``mode``; ``per_channel = False``
    keeps one weight scale per tensor; ``strip_names`` drops tensor names and signatures, else the
    file has the ``serving_default`` signature TFLite's Keras path gives (:func:`_signed`)."""
    converter = configure(_converter(model), mode, x_train, per_channel)
    with warnings.catch_warnings(), native_stderr_dropped():  # "fully_quantize: 0, ..." and a warning that the
        warnings.simplefilter("ignore", UserWarning)  # uint8 input's range was not given: calibration gives it
        flatbuffer = converter.convert()
    return _strip_names(flatbuffer) if strip_names else _signed(flatbuffer, model)


def configure(converter: tf.lite.TFLiteConverter, mode: str, x_train: np.ndarray,
              per_channel: bool = True) -> tf.lite.TFLiteConverter:
    """``converter`` set for quantization ``mode`` (int8 calibrated on ``x_train``)."""
    converter._experimental_disable_per_channel = not per_channel  # the converter's only switch for it
    if mode in ("dynamic", "float16", "int8", "qat"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in ("int8", "qat"):
        converter.representative_dataset = representative_data(x_train)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
    return converter


def _converter(model: keras.Model) -> tf.lite.TFLiteConverter:
    """TFLite's converter for ``model``'s traced call, frozen directly. TFLite's Keras path
    (``from_keras_model``) writes a SavedModel first, only for the signature: the same outputs,
    several times slower (docs/BENCHMARKS.md, "Conversion")."""
    call = tf.function(lambda pixels: model(pixels, training=False))
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], model.inputs[0].dtype, name=model.input_names[0])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([call.get_concrete_function(spec)], model)
    converter.experimental_lower_to_saved_model = False
    return converter


def _signed(flatbuffer: bytes, model: keras.Model) -> bytes:
    """``flatbuffer`` with the signature TFLite's Keras path writes: ``serving_default``, keyed by the
    Keras model's input and output names (``pixels``, ``logits``), which its tensors take too."""
    tflite = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph = tflite.subgraphs[0]
    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = b"serving_default", 0
    signature.inputs = [_tensor_map(graph, index, name) for index, name in zip(graph.inputs, model.input_names)]
    signature.outputs = [_tensor_map(graph, index, name) for index, name in zip(graph.outputs, model.output_names)]
    tflite.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tflite))


def _tensor_map(graph, index: int, name: str):
    graph.tensors[index].name = name.encode()
    entry = schema.TensorMapT()
    entry.name, entry.tensorIndex = name.encode(), index
    return entry


def _strip_names(flatbuffer: bytes) -> bytes:
    """``flatbuffer`` without tensor names, subgraph names, description and signatures."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def input_dtype(mode: str) -> str:
    return "uint8" if mode in ("int8", "qat") else "float32"
