"""Model families (teacher, assistant, student) built with tf_keras so that TFMOT works.

Every model takes raw pixels (0-255, NHWC, float32) and normalises them in its first
layer, so an exported model needs none of our preprocessing code. Every model outputs
logits, computed in float32 also under a mixed-precision policy (Keras' rule for the last layer).

Two kinds of architecture:

* families, scaled by a width multiplier (``cnn``, ``resnet8``, ``dscnn``, ``mobilenetv2``),
  which a search scans from a few KB to a few hundred KB;
* fixed presets reproducing the paper's models (``paper-mnist-student`` ...).
"""

from __future__ import annotations

from typing import Callable

from autocompress import architectures
from autocompress._tf import keras
from autocompress.architectures import ARCHITECTURES
from autocompress.errors import UserError

layers = keras.layers


def _input(input_shape: tuple[int, int, int]):
    inputs = keras.Input(shape=input_shape, name="pixels")
    return inputs, layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(inputs)


def _batch_norm(name: str):
    """BatchNorm whose moving statistics settle within the few hundred steps of a short fine-tune."""
    return layers.BatchNormalization(momentum=0.9, name=name)


def _scaled(width: float, channels: int) -> int:
    return max(4, int(round(channels * width)))


def _conv_bn_relu(x, filters: int, name: str, kernel: int = 3, strides: int = 1):
    x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = _batch_norm(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _head(x, num_classes: int, dropout: float = 0.0):
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(num_classes, name="logits", dtype="float32")(x)


def build_cnn(input_shape, num_classes: int, width: float = 1.0, dropout: float = 0.0) -> keras.Model:
    """VGG-style: three stages of two 3x3 conv-BN-ReLU (32, 64, 128 filters x width), global pooling."""
    inputs, x = _input(input_shape)
    for stage, channels in enumerate((32, 64, 128)):
        filters = _scaled(width, channels)
        x = _conv_bn_relu(x, filters, f"s{stage}a")
        x = _conv_bn_relu(x, filters, f"s{stage}b")
        if stage < 2:
            x = layers.MaxPooling2D(name=f"s{stage}_pool")(x)
    return keras.Model(inputs, _head(x, num_classes, dropout), name=f"cnn_w{width:g}")


def build_resnet8(input_shape, num_classes: int, width: float = 1.0, dropout: float = 0.0) -> keras.Model:
    """ResNet-8 of the MLPerf Tiny image-classification reference (16, 32, 64 filters x width)."""
    inputs, x = _input(input_shape)
    x = _conv_bn_relu(x, _scaled(width, 16), "stem")
    for stage, channels in enumerate((16, 32, 64)):
        filters = _scaled(width, channels)
        strides = 1 if stage == 0 else 2
        shortcut = x
        y = _conv_bn_relu(x, filters, f"s{stage}a", strides=strides)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"s{stage}b_conv")(y)
        y = _batch_norm(name=f"s{stage}b_bn")(y)
        if strides != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=f"s{stage}_proj_conv")(shortcut)
            shortcut = _batch_norm(name=f"s{stage}_proj_bn")(shortcut)
        x = layers.ReLU(name=f"s{stage}_relu")(layers.Add(name=f"s{stage}_add")([shortcut, y]))
    return keras.Model(inputs, _head(x, num_classes, dropout), name=f"resnet8_w{width:g}")


def build_dscnn(input_shape, num_classes: int, width: float = 1.0, dropout: float = 0.0) -> keras.Model:
    """Depthwise-separable CNN (MobileNet-style blocks: 32, 64, 64, 128, 128 filters x width)."""
    inputs, x = _input(input_shape)
    x = _conv_bn_relu(x, _scaled(width, 32), "stem")
    for block, (channels, strides) in enumerate(((64, 2), (64, 1), (128, 2), (128, 1))):
        x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"b{block}_dw")(x)
        x = _batch_norm(name=f"b{block}_dw_bn")(x)
        x = layers.ReLU(name=f"b{block}_dw_relu")(x)
        x = _conv_bn_relu(x, _scaled(width, channels), f"b{block}_pw", kernel=1)
    return keras.Model(inputs, _head(x, num_classes, dropout), name=f"dscnn_w{width:g}")


# (expansion, output channels, blocks, stride of the first block): MobileNetV2's inverted residuals
# sized for 32x32 images: about 76K parameters and 8.5M multiply-accumulates at width 1 on CIFAR-10
# (ResNet-8: 78K and 12.5M), the last stage at 8x8.
_INVERTED_RESIDUALS = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 2), (4, 64, 2, 1))


def build_mobilenetv2(input_shape, num_classes: int, width: float = 1.0, dropout: float = 0.0) -> keras.Model:
    """Inverted-residual blocks (1x1 expand, 3x3 depthwise, linear 1x1 project, a residual Add where
    the shape allows), MobileNetV2 style: more accuracy per byte than plain convolutions."""
    inputs, x = _input(input_shape)
    x = _conv_bn_relu(x, _scaled(width, 16), "stem")
    block = 0
    for expansion, channels, repeats, first_stride in _INVERTED_RESIDUALS:
        filters = _scaled(width, channels)
        for i in range(repeats):
            strides, name, shortcut = (first_stride if i == 0 else 1), f"b{block}", x
            y = _conv_bn_relu(x, int(x.shape[-1]) * expansion, f"{name}_expand", kernel=1) if expansion > 1 else x
            y = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False, name=f"{name}_dw")(y)
            y = layers.ReLU(name=f"{name}_dw_relu")(_batch_norm(name=f"{name}_dw_bn")(y))
            y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project_conv")(y)
            y = _batch_norm(name=f"{name}_project_bn")(y)
            x = layers.Add(name=f"{name}_add")([shortcut, y]) if strides == 1 and shortcut.shape[-1] == filters else y
            block += 1
    return keras.Model(inputs, _head(x, num_classes, dropout), name=f"mobilenetv2_w{width:g}")


def _paper_net(name: str, convs: tuple[int, ...], padding: str, pool_after: tuple[bool, ...], hidden: int,
               hidden_bn: bool = False) -> Callable[..., keras.Model]:
    """The paper's plain Conv-Pool stacks with a Flatten-Dense head (no normalisation layers in the convs)."""

    def build(input_shape, num_classes: int, width: float = 1.0, dropout: float = 0.0) -> keras.Model:
        inputs, x = _input(input_shape)
        for i, (filters, pool) in enumerate(zip(convs, pool_after)):
            x = layers.Conv2D(filters, 3, padding=padding, activation="relu", name=f"conv{i}")(x)
            if pool:
                x = layers.MaxPooling2D(name=f"pool{i}")(x)
        x = layers.Flatten(name="flatten")(x)
        if hidden:
            x = layers.Dense(hidden, name="hidden")(x)
            if hidden_bn:
                x = _batch_norm(name="hidden_bn")(x)
            x = layers.ReLU(name="hidden_relu")(x)
        return keras.Model(inputs, layers.Dense(num_classes, name="logits", dtype="float32")(x), name=name)

    return build


# The paper ("Analyzing Compression Techniques for Computer Vision", Khan & Mandal 2023) gives
# parameter counts, not layer lists: these stacks reproduce its counts (exactly where it states one
# exactly: the MNIST student 20,490 and the CIFAR student 343,626; within 2% for the others).
PRESETS: dict[str, Callable[..., keras.Model]] = {
    "paper-mnist-teacher": _paper_net("paper-mnist-teacher", (32, 64), "same", (True, True), 488),
    "paper-mnist-assistant": _paper_net("paper-mnist-assistant", (16, 32), "same", (True, True), 108),
    "paper-mnist-student": _paper_net("paper-mnist-student", (16, 32), "same", (True, True), 0),
    "paper-cifar-teacher": _paper_net("paper-cifar-teacher", (32, 32, 64, 64), "same", (False, True, False, True), 318),
    "paper-cifar-assistant": _paper_net("paper-cifar-assistant", (32, 32, 64, 64), "same", (False, True, False, True), 254),
    "paper-cifar-student": _paper_net("paper-cifar-student", (32, 48, 96), "valid", (True, True, True), 720, hidden_bn=True),
}

_BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "cnn": build_cnn,
    "resnet8": build_resnet8,
    "dscnn": build_dscnn,
    "mobilenetv2": build_mobilenetv2,
    **PRESETS,
}
assert tuple(_BUILDERS) == ARCHITECTURES and tuple(PRESETS) == architectures.PRESETS, "architectures.py is stale"


def build_model(architecture: str, input_shape, num_classes: int, width: float = 1.0,
                dropout: float = 0.0) -> keras.Model:
    """Build ``architecture`` (a family or a preset) for images of ``input_shape`` and ``num_classes``.

    >>> build_model("cnn", (28, 28, 1), 10, width=0.25).count_params() < 30_000
    True
    """
    if architecture not in _BUILDERS:
        raise UserError(f"unknown architecture {architecture!r}; choose one of: {', '.join(ARCHITECTURES)}")
    if width <= 0:
        raise UserError(f"width must be > 0 (got {width}); 1.0 is the family's base size")
    try:
        return _BUILDERS[architecture](tuple(input_shape), num_classes, width=width, dropout=dropout)
    except ValueError as error:  # e.g. 'valid' convolutions on images too small for them
        raise UserError(f"{architecture} cannot take {tuple(input_shape)} images ({error}); pick another architecture")

