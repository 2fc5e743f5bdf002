"""Your own model as the one to compress (student ``"model"``), and your own student families.

A user's trained classifier (any file :mod:`autocompress.user_model` opens: Keras 3 or tf_keras,
``.keras``, ``.h5`` or a SavedModel folder, loaded without running code from it) is:

1. rebuilt layer by layer as a tf_keras functional model with its weights (TFMOT and the channel
   surgery need tf_keras); a final softmax is dropped (every model here outputs logits); the
   rebuilt model's outputs are checked against the original's on validation images;
2. given its input contract: a model fed ``pixels * scale + offset`` gets a first
   ``Rescaling(scale, offset)`` layer, so it, and every file exported from it, takes raw pixels
   0-255 like every other model here. A model near chance under that contract is refused.

The result is cached by the file's content and the contract. A family of yours is a function
``(input_shape, num_classes, width) -> model`` (Keras 3 or tf_keras, raw pixels in, logits out),
named ``"package.module:function"`` (importable from the folder autocompress runs in).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from autocompress import __version__
from autocompress._tf import keras, tf
from autocompress.architectures import OWN_MODEL, is_user_family
from autocompress.cache import atomic_directory, content_hash, key_of
from autocompress.errors import UserError
from autocompress.quiet import native_stderr_dropped
from autocompress.user_model import load_user_model

CHECK_IMAGES = 256  # validation images the rebuilt model must agree with the original on

_L = keras.layers
_CONV = ("kernel_size", "strides", "padding", "dilation_rate", "activation", "use_bias")
_POOL = ("pool_size", "strides", "padding")
# Keras 3 layer -> (tf_keras class, the constructor arguments read from its config)
CONVERTIBLE: dict[str, tuple[type, tuple[str, ...]]] = {
    "Conv2D": (_L.Conv2D, ("filters", *_CONV, "groups")),
    "DepthwiseConv2D": (_L.DepthwiseConv2D, (*_CONV, "depth_multiplier")),
    "SeparableConv2D": (_L.SeparableConv2D, ("filters", *_CONV, "depth_multiplier")),
    "Dense": (_L.Dense, ("units", "activation", "use_bias")),
    "BatchNormalization": (_L.BatchNormalization, ("axis", "momentum", "epsilon", "center", "scale")),
    "Activation": (_L.Activation, ("activation",)),
    "ReLU": (_L.ReLU, ("max_value", "negative_slope", "threshold")),
    "Softmax": (_L.Softmax, ("axis",)),
    "MaxPooling2D": (_L.MaxPooling2D, _POOL),
    "AveragePooling2D": (_L.AveragePooling2D, _POOL),
    "GlobalAveragePooling2D": (_L.GlobalAveragePooling2D, ("keepdims",)),
    "GlobalMaxPooling2D": (_L.GlobalMaxPooling2D, ("keepdims",)),
    "Add": (_L.Add, ()),
    "Concatenate": (_L.Concatenate, ("axis",)),
    "Flatten": (_L.Flatten, ()),
    "Reshape": (_L.Reshape, ("target_shape",)),
    "Dropout": (_L.Dropout, ("rate",)),
    "Rescaling": (_L.Rescaling, ("scale", "offset")),
    "Normalization": (_L.Normalization, ("axis", "mean", "variance")),
    "ZeroPadding2D": (_L.ZeroPadding2D, ("padding",)),
}
# identities at inference (data augmentation, noise): dropped
INFERENCE_IDENTITY = ("RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
                      "RandomBrightness", "GaussianNoise", "GaussianDropout", "InputLayer")


@dataclass(frozen=True)
class InputScaling:
    """What the user's model is fed: ``pixels * scale + offset`` (pixels are 0-255)."""

    scale: float = 1.0
    offset: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.scale) and np.isfinite(self.offset)) or self.scale == 0:
            raise UserError(f"--input-scale must be a non-zero number and --input-offset a number (got "
                            f"{self.scale}, {self.offset}); 1 and 0 mean raw pixels 0-255")

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0

    def fed(self) -> str:
        return "raw pixels 0-255" if self.identity else f"pixels * {self.scale:g} + {self.offset:g}"

    def describe(self) -> str:
        """What became of the contract in the exported file (its model card says this)."""
        if self.identity:
            return "your model took raw pixels 0-255 (any normalisation is inside it): feed raw pixels 0-255"
        return (f"your model took {self.fed()} (--input-scale/--input-offset); its first layer (input_scaling) "
                "now computes that: feed raw pixels 0-255")


@dataclass(frozen=True)
class OwnModel:
    """A user's model rebuilt in tf_keras (raw pixels in, logits out), cached at ``path``."""

    source: str
    key: str
    path: Path
    val_accuracy: float
    params: int
    scaling: InputScaling
    notes: tuple[str, ...] = ()

    def load(self) -> keras.Model:
        return keras.models.load_model(self.path / "model.keras", compile=False)


def _activation(name) -> str | None:
    """A built-in activation's name (Keras 3 may store one as a serialised function), else None."""
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name"))
    return name if isinstance(name, str) or name is None else None


def _softmax_head(layer) -> bool:
    return type(layer).__name__ == "Softmax" or _activation(layer.get_config().get("activation")) == "softmax"


def _rebuilt_layer(layer, keras3: bool, drop_softmax: bool, name: str):
    """A fresh tf_keras layer named ``name``, equal to ``layer`` (its weights are set later)."""
    kind = type(layer).__name__
    config = {**layer.get_config(), "name": name}
    if drop_softmax and "activation" in config:
        config["activation"] = "linear"
    if not keras3:
        return type(layer).from_config(config)
    if kind not in CONVERTIBLE:
        raise UserError(f"layer {layer.name} ({kind}) cannot be converted from Keras 3 to tf_keras (supported: "
                        f"{', '.join(CONVERTIBLE)}); replace it, or build and save the model with tf_keras")
    if config.get("data_format", "channels_last") != "channels_last":
        raise UserError(f"layer {layer.name} ({kind}) is channels_first; autocompress needs channels_last (NHWC) models")
    if kind == "Normalization" and config.get("invert"):
        raise UserError(f"layer {layer.name} is an inverted Normalization, which cannot be converted; remove it")
    cls, arguments = CONVERTIBLE[kind]
    values = {key: config[key] for key in arguments if key in config}
    if "activation" in values:
        values["activation"] = _activation(values["activation"])
        if values["activation"] is None:
            raise UserError(f"layer {layer.name} ({kind}) has a custom activation; use a built-in one")
    if isinstance(values.get("axis"), list):
        values["axis"] = tuple(values["axis"])
    return cls(name=name, **values)


class _Rebuild:
    """Walks a (possibly nested) Keras graph from its outputs, calling rebuilt layers on new tensors."""

    def __init__(self, keras3: bool, head) -> None:
        self.keras3, self.head = keras3, head
        self.pairs: list[tuple[object, object]] = []  # (original layer, its rebuild): weights to copy
        self.notes: list[str] = []
        self._layers: dict[int, object] = {}
        self._names: set[str] = {"pixels", "input_scaling"}

    def _unique(self, name: str) -> str:
        """``name``, made unique (a nested model may reuse its outer model's layer names)."""
        unique, count = name, 1
        while unique in self._names:
            count += 1
            unique = f"{name}_{count}"
        self._names.add(unique)
        return unique

    def model(self, model, inputs: list) -> list:
        done = {id(t): new for t, new in zip(model.inputs, inputs)}
        return [self.tensor(t, done) for t in model.outputs]

    def tensor(self, tensor, done: dict):
        if id(tensor) in done:
            return done[id(tensor)]
        layer, node_index, tensor_index = tuple(tensor._keras_history)[:3]
        node = layer._inbound_nodes[node_index]
        arguments = [self.tensor(t, done) for t in tf.nest.flatten(node.input_tensors)]
        kind = type(layer).__name__
        if hasattr(layer, "layers") and hasattr(layer, "outputs"):  # a nested model: inlined
            outputs = self.model(layer, arguments)
        elif kind in INFERENCE_IDENTITY:
            outputs = arguments
            if kind != "InputLayer":
                self.notes.append(f"{layer.name} ({kind}) is an identity at inference: dropped")
        else:
            head = layer is self.head and _softmax_head(layer)
            if head:
                self.notes.append(f"the final softmax of {layer.name} is dropped: the model outputs logits")
            if head and kind in ("Softmax", "Activation"):
                outputs = arguments
            else:
                if id(layer) not in self._layers:
                    self._layers[id(layer)] = _rebuilt_layer(layer, self.keras3, head, self._unique(layer.name))
                    self.pairs.append((layer, self._layers[id(layer)]))
                outputs = [self._layers[id(layer)](arguments if len(arguments) > 1 else arguments[0])]
        done[id(tensor)] = outputs[tensor_index if len(outputs) > 1 else 0]
        return done[id(tensor)]


def _head(model):
    """The layer that makes ``model``'s output (inside nested models)."""
    while hasattr(model, "layers") and hasattr(model, "outputs"):
        model = model.outputs[0]._keras_history[0]
    return model


def to_tf_keras(model, scaling: InputScaling = InputScaling()) -> tuple[keras.Model, tuple[str, ...]]:
    """``model`` (Keras 3 or tf_keras) rebuilt as a tf_keras functional model with its weights and
    logits out, behind a first ``Rescaling`` layer unless ``scaling`` is the identity; and notes."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(f"model {model.name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                        "autocompress needs one image input and one class-score output")
    walk = _Rebuild(not isinstance(model, keras.Model), _head(model))
    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="pixels")
    scaled = inputs if scaling.identity else _L.Rescaling(scaling.scale, offset=scaling.offset,
                                                          name="input_scaling")(inputs)
    rebuilt = keras.Model(inputs, walk.model(model, [scaled])[0], name=model.name)
    for old, new in walk.pairs:
        try:
            new.set_weights([np.asarray(w) for w in old.get_weights()])
        except ValueError as error:
            raise UserError(f"the weights of layer {old.name} do not fit its tf_keras rebuild ({error}); "
                            "save the model with tf_keras") from None
    return rebuilt, tuple(walk.notes)


def _check_equal(original, rebuilt: keras.Model, pixels: np.ndarray, scaling: InputScaling, softmax: bool) -> None:
    """The rebuilt model (logits, raw pixels in) must give the original's outputs on ``pixels``."""
    with native_stderr_dropped():  # Keras 3 graphs make Grappler log harmless errors
        expected = np.asarray(original(pixels * scaling.scale + scaling.offset, training=False))
    got = rebuilt.predict(pixels, verbose=0)
    if softmax:
        got = np.exp(got - got.max(axis=-1, keepdims=True))
        got /= got.sum(axis=-1, keepdims=True)
    gap = float(np.abs(expected - got).max())
    if gap > 1e-3 * max(1.0, float(np.abs(expected).max())):
        raise UserError(f"model {original.name} rebuilt in tf_keras differs from the original by {gap:.3g} on "
                        "validation images; build and save it with tf_keras instead (import tf_keras as keras)")


def _check_shapes(model, dataset, source: Path) -> None:
    got = tuple(model.inputs[0].shape[1:])
    if len(got) != len(dataset.input_shape) or any(g not in (None, e) for g, e in zip(got, dataset.input_shape)):
        raise UserError(f"model {source} takes inputs of shape {(None, *got)} but {dataset.name} images are "
                        f"{(None, *dataset.input_shape)}; pass a model trained on this dataset")
    output = tuple(model.outputs[0].shape)
    if len(output) != 2 or output[-1] != dataset.num_classes:
        raise UserError(f"model {source} outputs shape {output} but {dataset.name} has {dataset.num_classes} classes; "
                        "pass a model trained on this dataset, with one score per class")


def prepare(dataset, source: str | Path, cache_dir: Path, scaling: InputScaling = InputScaling(), *,
            custom_objects: dict | None = None, safe_mode: bool = True) -> OwnModel:
    """The model file ``source``, loaded, rebuilt and checked for ``dataset`` (cached by its content
    and ``scaling``); every problem is one :class:`UserError` line."""
    from autocompress.training import keras_accuracy

    source = Path(source)
    if not source.exists():
        raise UserError(f"model file {source} does not exist; pass a .keras or .h5 file or a SavedModel folder")
    key = key_of(__version__, content_hash(source), dataset.fingerprint, scaling.scale, scaling.offset)
    path = Path(cache_dir) / "models" / f"{dataset.name}-{key}"
    if not (path / "model.json").exists():
        original = load_user_model(source, "model", custom_objects=custom_objects, safe_mode=safe_mode)
        _check_shapes(original, dataset, source)
        model, notes = to_tf_keras(original, scaling)
        _check_equal(original, model, dataset.x_val[:CHECK_IMAGES].astype(np.float32), scaling,
                     any("softmax" in note for note in notes))
        accuracy = keras_accuracy(model, dataset.x_val, dataset.y_val)
        _check_contract(original, dataset, source, scaling, accuracy)
        info = {"source": str(source), "val_accuracy": accuracy, "params": int(model.count_params()),
                "notes": list(notes)}
        with atomic_directory(path) as tmp:
            model.save(tmp / "model.keras")
            (tmp / "model.json").write_text(json.dumps(info, indent=2))
    info = json.loads((path / "model.json").read_text())
    return OwnModel(source=str(source), key=key, path=path, val_accuracy=info["val_accuracy"], params=info["params"],
                    scaling=scaling, notes=tuple(info["notes"]))


COMMON_CONTRACTS = (InputScaling(), InputScaling(1 / 255), InputScaling(1 / 127.5, -1.0))  # 0-255, [0, 1], [-1, 1]


def _flags(scaling: InputScaling) -> str:
    if scaling.identity:
        return "no --input-scale"
    return f"--input-scale {scaling.scale:.8g}" + (f" --input-offset {scaling.offset:g}" if scaling.offset else "")


def _check_contract(original, dataset, source: Path, scaling: InputScaling, accuracy: float) -> None:
    """Refuse a model near chance on the validation split when fed as declared, or one that the
    common other contracts (raw pixels, [0, 1], [-1, 1]) feed far better: the declaration is wrong."""
    from autocompress.training import predict_logits

    chance = float(np.max(np.bincount(dataset.y_val)) / len(dataset.y_val))
    others = {}
    for other in COMMON_CONTRACTS:
        if other != scaling:
            fed = dataset.x_val.astype(np.float32) * other.scale + other.offset
            others[other] = float(np.mean(np.argmax(predict_logits(original, fed), axis=1) == dataset.y_val))
    best = max(others, key=others.get)
    near_chance = lambda value: value <= chance + 0.1 * (1.0 - chance)  # noqa: E731
    if near_chance(accuracy) and near_chance(others[best]):
        raise UserError(f"model {source} scores {100 * accuracy:.1f}% on {dataset.name}'s validation split, near "
                        f"chance ({100 * chance:.1f}%), fed raw pixels, [0, 1] or [-1, 1]; pass a model trained on "
                        "this dataset (its classes in the dataset's order)")
    if near_chance(accuracy) or others[best] > accuracy + 0.1:
        raise UserError(f"model {source} scores {100 * accuracy:.1f}% on {dataset.name}'s validation split when fed "
                        f"{scaling.fed()} (chance: {100 * chance:.1f}%) but {100 * others[best]:.1f}% fed "
                        f"{best.fed()}; declare what it takes: {_flags(best)}")


def _builder(name: str) -> Callable:
    module, _, function = name.partition(":")
    try:
        return getattr(importlib.import_module(module.strip()), function.strip())
    except (ImportError, AttributeError) as error:
        raise UserError(f"cannot import student family {name!r} ({error}); name it 'package.module:function', "
                        "importable from the folder you run autocompress in") from None


def build_student(name: str, input_shape, num_classes: int, width: float = 1.0,
                  own: OwnModel | None = None) -> keras.Model:
    """The untrained student ``name`` (built in, or a family of yours), or your own model as given."""
    from autocompress.models import build_model

    if name == OWN_MODEL:
        if own is None:
            raise UserError("student 'model' compresses your own model: pass it with --model PATH")
        return own.load()
    if not is_user_family(name):
        return build_model(name, input_shape, num_classes, width=width)
    try:
        model = _builder(name)(tuple(input_shape), num_classes, width)
    except UserError:
        raise
    except Exception as error:  # the user's code: reported as theirs, in one line
        raise UserError(f"student family {name!r} failed to build at width {width:g} "
                        f"({type(error).__name__}: {error})") from None
    if not (hasattr(model, "inputs") and hasattr(model, "outputs")):
        raise UserError(f"student family {name!r} returned {type(model).__name__}, not a Keras model")
    return to_tf_keras(model)[0]
