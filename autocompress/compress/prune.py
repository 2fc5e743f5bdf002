"""Pruning with fine-tuning: unstructured and 2:4 through TFMOT, channel pruning by model surgery.

* local: every chosen layer gets the same target sparsity;
* global: one magnitude ranking across all chosen layers decides each layer's share, so
  layers end up with different sparsities;
* channel: whole filters (units) are removed and a smaller dense model is rebuilt, so the
  exported file itself shrinks. Channels tied together by residual additions are pruned as
  one group; a concatenation's channels are its inputs', each pruned with its own group.
  Functional graphs of Conv2D, SeparableConv2D, DepthwiseConv2D and Dense layers qualify (a
  user's model is rebuilt as one, see :mod:`autocompress.own_model`); any other layer that mixes
  channels (Reshape, say) stops it with its name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autocompress._tf import keras
from autocompress.errors import UserError

KERNEL_LAYERS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, keras.layers.Dense)
PASS_THROUGH = (
    keras.layers.BatchNormalization, keras.layers.ReLU, keras.layers.Activation, keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
    keras.layers.Dropout, keras.layers.Rescaling, keras.layers.DepthwiseConv2D, keras.layers.InputLayer,
    keras.layers.Normalization, keras.layers.ZeroPadding2D, keras.layers.Softmax,
)


def _kernel(layer) -> np.ndarray:
    """The kernel whose last axis is the layer's filters (units): a separable conv's pointwise one."""
    weights = layer.get_weights()
    return weights[1] if isinstance(layer, keras.layers.SeparableConv2D) else weights[0]


def _producer(layer) -> bool:
    """Whether ``layer`` makes new channels (its filters or units can be removed)."""
    return isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.Dense)) and \
        not isinstance(layer, keras.layers.DepthwiseConv2D)


@dataclass(frozen=True)
class SparsityReport:
    """Zeros among the kernels of conv, depthwise and dense layers: overall and per layer."""

    overall: float
    per_layer: dict[str, float]
    params: int
    nonzero_params: int


def measure_sparsity(model: keras.Model) -> SparsityReport:
    per_layer, zeros, total = {}, 0, 0
    for layer in model.layers:
        if isinstance(layer, KERNEL_LAYERS):
            kernel = _kernel(layer)
            layer_zeros = int(np.sum(kernel == 0))
            per_layer[layer.name] = round(layer_zeros / kernel.size, 4)
            zeros, total = zeros + layer_zeros, total + kernel.size
    weights = model.get_weights()
    params = int(sum(w.size for w in weights))
    nonzero = int(sum(np.count_nonzero(w) for w in weights))
    return SparsityReport(round(zeros / max(1, total), 4), per_layer, params, nonzero)


def _chosen(layer, which: str) -> bool:
    if which in ("conv", "all") and _producer(layer) and not isinstance(layer, keras.layers.Dense):
        return True
    return which in ("dense", "all") and isinstance(layer, keras.layers.Dense)


def layer_targets(model: keras.Model, sparsity: float, scope: str, which: str) -> dict[str, float]:
    """Target sparsity per chosen layer: equal (local), or from one global magnitude threshold."""
    chosen = [layer for layer in model.layers if _chosen(layer, which)]
    if not chosen:
        raise UserError(f"the model has no {which} layers to prune; choose --prune-layers conv, dense or all")
    if scope == "local":
        return {layer.name: sparsity for layer in chosen}
    magnitudes = np.concatenate([np.abs(_kernel(layer)).ravel() for layer in chosen])
    threshold = np.quantile(magnitudes, sparsity)
    targets = {}
    for layer in chosen:
        share = float(np.mean(np.abs(_kernel(layer)) <= threshold))
        targets[layer.name] = min(share, 0.99)  # TFMOT needs < 1; never empty a layer entirely
    return targets


def _copy_weights(source: keras.Model, wrapped: keras.Model) -> None:
    """Put ``source``'s weights into a clone whose layers may be wrapped (clone_model re-initialises)."""
    for original, clone in zip(source.layers, wrapped.layers):
        target = getattr(clone, "layer", clone)
        if original.get_weights():
            target.set_weights(original.get_weights())


def wrap_for_pruning(model: keras.Model, targets: dict[str, float], structure: str, steps: int,
                     notes: list[str]) -> keras.Model:
    """Clone ``model`` with TFMOT pruning wrappers on the target layers (weights kept)."""
    sparsity_api = _sparsity_api()
    frequency = max(1, steps // 20)

    def wrap(layer):
        target = targets.get(layer.name, 0.0)
        if target <= 0.0:
            return layer.__class__.from_config(layer.get_config())
        clone = layer.__class__.from_config(layer.get_config())
        if structure == "2:4":
            if _kernel(layer).shape[-2] % 4:
                notes.append(f"2:4 cannot apply to {layer.name} (input channels not a multiple of 4): left dense")
                return clone
            schedule = sparsity_api.ConstantSparsity(0.5, begin_step=0, frequency=frequency)
            return sparsity_api.prune_low_magnitude(clone, pruning_schedule=schedule, sparsity_m_by_n=(2, 4))
        schedule = sparsity_api.PolynomialDecay(0.0, target, begin_step=0, end_step=max(1, int(steps * 0.7)),
                                                frequency=frequency)
        return sparsity_api.prune_low_magnitude(clone, pruning_schedule=schedule)

    wrapped = keras.models.clone_model(model, clone_function=wrap)
    _copy_weights(model, wrapped)
    return wrapped


def pruning_step() -> keras.callbacks.Callback:
    """The callback that advances a wrapped model's pruning schedule while it trains."""
    return _sparsity_api().UpdatePruningStep()


def strip_pruning(wrapped: keras.Model) -> keras.Model:
    """The plain model inside ``wrapped``, with its pruned zeros."""
    return _sparsity_api().strip_pruning(wrapped)


def _sparsity_api():
    """TFMOT's pruning API, imported only once a model is pruned this way: importing TFMOT adds
    seconds to every worker's start, and channel pruning does without it."""
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras


# ---------------------------------------------------------------------------------------------
# Channel pruning by surgery
# ---------------------------------------------------------------------------------------------

class _Groups:
    """Union-find over channel groups: a group is a set of tensors whose channels must match."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def new(self) -> int:
        gid = len(self.parent)
        self.parent[gid] = gid
        return gid

    def find(self, gid: int) -> int:
        while self.parent[gid] != gid:
            gid = self.parent[gid]
        return gid

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        self.parent[b] = a
        return a


Spec = int | tuple[tuple[int, int], ...]  # a group, or a concatenation's (group, channels) segments


@dataclass(frozen=True)
class _Trace:
    groups: _Groups
    out_group: dict[str, Spec]          # layer -> group(s) of its output channels
    in_group: dict[str, Spec]           # layer -> group(s) of its input channels
    flatten_spatial: dict[str, int]     # layer fed by Flatten -> spatial positions per channel
    producers: dict[str, int]           # conv / dense layer -> group it creates


def _inbound(layer) -> list:
    node = layer._inbound_nodes[0]
    inbound = node.inbound_layers
    return list(inbound) if isinstance(inbound, (list, tuple)) else [inbound]


def _segments(spec: Spec, channels: int) -> tuple[tuple[int, int], ...]:
    return spec if isinstance(spec, tuple) else ((spec, channels),)


def _trace(model: keras.Model) -> _Trace:
    groups = _Groups()
    out_group, in_group, flatten_spatial, producers, flat_from = {}, {}, {}, {}, {}
    for layer in model.layers:
        parents = _inbound(layer) if not isinstance(layer, keras.layers.InputLayer) else []
        if isinstance(layer, keras.layers.InputLayer):
            out_group[layer.name] = groups.new()
            continue
        source = parents[0].name
        if _producer(layer):
            if source in flat_from:
                in_group[layer.name], flatten_spatial[layer.name] = flat_from[source]
            else:
                in_group[layer.name] = out_group[source]
            out_group[layer.name] = producers[layer.name] = groups.new()
        elif isinstance(layer, keras.layers.Add):
            if any(isinstance(out_group[p.name], tuple) for p in parents):
                raise UserError(f"channel pruning cannot follow a concatenation into an addition ({layer.name}); "
                                "use --prune-structure unstructured")
            merged = out_group[parents[0].name]
            for other in parents[1:]:
                merged = groups.union(merged, out_group[other.name])
            out_group[layer.name] = merged
        elif isinstance(layer, keras.layers.Concatenate) and layer.axis in (-1, len(layer.output_shape) - 1):
            out_group[layer.name] = tuple(segment for p in parents
                                          for segment in _segments(out_group[p.name], p.output_shape[-1]))
        elif isinstance(layer, keras.layers.Flatten):
            shape = layer.input_shape[1:]
            flat_from[layer.name] = (out_group[source], int(np.prod(shape[:-1])))
            out_group[layer.name] = -1
        elif isinstance(layer, PASS_THROUGH):
            if source in flat_from:
                flat_from[layer.name] = flat_from[source]
            out_group[layer.name] = in_group[layer.name] = out_group[source]
        else:
            raise UserError(f"channel pruning does not support {type(layer).__name__} layers ({layer.name}); "
                            "use --prune-structure unstructured")
    return _Trace(groups, out_group, in_group, flatten_spatial, producers)


def _filter_scores(layer) -> np.ndarray:
    """Mean absolute weight of each output filter (unit): comparable across fan-ins."""
    kernel = _kernel(layer)
    return np.abs(kernel.reshape(-1, kernel.shape[-1])).mean(axis=0)


def choose_channels(model: keras.Model, sparsity: float, scope: str, which: str) -> tuple[dict[int, np.ndarray], _Trace]:
    """Kept channel indices per prunable group (groups not listed keep all their channels)."""
    trace = _trace(model)
    find = trace.groups.find
    output_group = find(trace.out_group[model.layers[-1].name])
    fixed = {find(trace.out_group[model.layers[0].name]), output_group}
    by_group: dict[int, list] = {}
    for name, gid in trace.producers.items():
        by_group.setdefault(find(gid), []).append(model.get_layer(name))
    prunable = {gid: members for gid, members in by_group.items()
                if gid not in fixed and all(_chosen(layer, which) for layer in members)}
    if not prunable:
        raise UserError(f"the model has no {which} filters that channel pruning can remove; "
                        "choose --prune-layers conv or all")
    scores = {gid: sum(_filter_scores(layer) for layer in members) for gid, members in prunable.items()}
    if scope == "global":
        normalised = np.concatenate([s / s.mean() for s in scores.values()])
        threshold = np.quantile(normalised, sparsity)
        keep_counts = {gid: max(1, int(np.sum(s / s.mean() > threshold))) for gid, s in scores.items()}
    else:
        keep_counts = {gid: max(1, int(round(len(s) * (1.0 - sparsity)))) for gid, s in scores.items()}
    kept = {gid: np.sort(np.argsort(-scores[gid])[: keep_counts[gid]]) for gid in scores}
    return kept, trace


def _indices(trace: _Trace, kept: dict[int, np.ndarray], spec: Spec, size: int) -> np.ndarray:
    """The kept channel indices of a tensor of ``size`` channels made by group(s) ``spec``."""
    if not isinstance(spec, tuple):
        return kept.get(trace.groups.find(spec), np.arange(size))
    parts, offset = [], 0
    for gid, channels in spec:
        parts.append(offset + _indices(trace, kept, gid, channels))
        offset += channels
    return np.concatenate(parts)


def prune_channels(model: keras.Model, sparsity: float, scope: str, which: str) -> keras.Model:
    """A new, smaller model without the lowest-magnitude filters, carrying the kept weights."""
    kept, trace = choose_channels(model, sparsity, scope, which)
    config = model.get_config()
    for layer_config in config["layers"]:
        name = layer_config["config"]["name"]
        if name in trace.producers:
            gid = trace.groups.find(trace.producers[name])
            if gid in kept:
                key = "filters" if "filters" in layer_config["config"] else "units"
                layer_config["config"][key] = int(len(kept[gid]))
    smaller = keras.Model.from_config(config)
    for old, new in zip(model.layers, smaller.layers):
        weights = old.get_weights()
        if not weights:
            continue
        new.set_weights(_slice_weights(old, weights, trace, kept))
    return smaller


def _slice_weights(layer, weights: list[np.ndarray], trace: _Trace, kept) -> list[np.ndarray]:
    name = layer.name
    if isinstance(layer, keras.layers.SeparableConv2D):
        depthwise, pointwise = weights[0], weights[1]
        multiplier = depthwise.shape[-1]
        ins = _indices(trace, kept, trace.in_group[name], depthwise.shape[2])
        outs = _indices(trace, kept, trace.out_group[name], pointwise.shape[-1])
        mixed = (ins[:, None] * multiplier + np.arange(multiplier)[None, :]).ravel()
        pointwise = np.take(np.take(pointwise, mixed, axis=2), outs, axis=-1)
        return [np.take(depthwise, ins, axis=2), pointwise] + [np.take(w, outs, axis=0) for w in weights[2:]]
    if _producer(layer):
        kernel = weights[0]
        outs = _indices(trace, kept, trace.out_group[name], kernel.shape[-1])
        in_axis = kernel.ndim - 2
        if name in trace.flatten_spatial:
            spatial = trace.flatten_spatial[name]
            channels = kernel.shape[0] // spatial
            ins = _indices(trace, kept, trace.in_group[name], channels)
            ins = (np.arange(spatial)[:, None] * channels + ins[None, :]).ravel()
        else:
            ins = _indices(trace, kept, trace.in_group[name], kernel.shape[in_axis])
        kernel = np.take(np.take(kernel, ins, axis=in_axis), outs, axis=-1)
        return [kernel] + [np.take(w, outs, axis=0) for w in weights[1:]]
    channels = _indices(trace, kept, trace.out_group[name], weights[0].shape[-2 if isinstance(layer, keras.layers.DepthwiseConv2D) else -1])
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return [np.take(weights[0], channels, axis=2)] + [np.take(w, channels, axis=0) for w in weights[1:]]
    return [np.take(w, channels, axis=-1) if w.ndim else w for w in weights]  # a Normalization's count is a scalar


def steps_for(n_examples: int, batch_size: int, epochs: int) -> int:
    return epochs * math.ceil(n_examples / batch_size)
