"""Training precision: bfloat16 mixed precision where it trains a model faster than float32.

Keras' ``mixed_bfloat16`` policy computes layers in bfloat16 and keeps variables, losses,
BatchNorm statistics and the layers we mark ``dtype="float32"`` (the logits) in float32. A model
trained that way is saved as a float32 model (the same layers and weights, rebuilt under the
float32 policy: :func:`as_float32`), so pruning, quantization and conversion never see bfloat16.

Native bfloat16 instructions do not make every model faster: on an AMD EPYC with ``avx512_bf16``
(docs/BENCHMARKS.md) bfloat16 halved a wide ResNet's step time but tripled a depthwise-separable
CNN's. So ``auto`` decides per model (:func:`for_model`): where the processor has the instructions,
it times a few training steps of the model in each precision and takes the faster, once per
processor and architecture (remembered in the cache folder).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import statistics
import time
from pathlib import Path
from typing import Callable, Iterator, Literal

from autocompress.errors import UserError

Precision = Literal["float32", "bfloat16"]
CHOICES = ("auto", "float32", "bfloat16")
_NATIVE_FLAGS = ("avx512_bf16", "amx_bf16")
TIMINGS = "precision-timings.json"  # in the cache folder: seconds per training step, per processor and model
_STEPS, _WARMUP = 8, 3  # training steps timed in each precision, and the first ones left out (tracing, caches)


@functools.lru_cache(maxsize=1)
def native_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this processor has bfloat16 matrix instructions (oneDNN then uses them)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(flag in flags for flag in _NATIVE_FLAGS)


def resolve(choice: str) -> Precision:
    """``choice`` checked; ``auto`` -> bfloat16 where the processor has it natively, float32 elsewhere
    (a model that trains faster in float32 all the same gets float32 from :func:`for_model`)."""
    if choice not in CHOICES:
        raise UserError(f"precision must be one of {', '.join(CHOICES)} (got {choice!r}); auto picks bfloat16 "
                        "where the processor has native bfloat16 instructions")
    if choice == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return choice


def _processor(cpuinfo: str = "/proc/cpuinfo") -> str:
    """This processor as timings are remembered for: model name, family and model numbers, cores."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        lines = []
    fields = {}
    for line in lines:
        name, _, value = line.partition(":")
        fields.setdefault(name.strip(), value.strip())
    return f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')}, model " \
           f"{fields.get('model', '?')}), {os.cpu_count()} cores"


def seconds_per_step(build: Callable, batch_size: int, precision: Precision) -> float:
    """Median seconds of one training step (Adam, cross-entropy) of ``build()``'s model under
    ``precision``, on random raw pixels, after its first steps."""
    import numpy as np

    from autocompress._tf import keras, tf

    class StepTimer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            durations.append(time.perf_counter() - self.started)

    durations: list[float] = []
    with policy(precision):
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (batch_size * _STEPS, *model.input_shape[1:])).astype(np.float32)
        y = rng.integers(0, model.output_shape[-1], batch_size * _STEPS)
        model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size), verbose=0, callbacks=[StepTimer()])
    return statistics.median(durations[_WARMUP:])


def for_model(choice: str, build: Callable, name: str, batch_size: int, cache_dir: Path) -> Precision:
    """``choice`` for one model (``build()`` makes it, ``name`` says which architecture and input it is):
    ``auto`` is bfloat16 only where the processor has native bfloat16 and :func:`seconds_per_step` is
    shorter in it than in float32. The timings are taken once per processor, model and batch size, and
    kept in ``cache_dir``'s :data:`TIMINGS` (with them, a reader sees why)."""
    from autocompress.cache import atomic_file, exclusive

    resolved = resolve(choice)
    if choice != "auto" or resolved == "float32":
        return resolved
    path = Path(cache_dir) / TIMINGS
    key = f"{_processor()} | {name} | batch {batch_size}"
    with exclusive(path):  # one process times (two at once would time each other)
        known = json.loads(path.read_text()) if path.exists() else {}
        if key not in known:
            known[key] = {p: seconds_per_step(build, batch_size, p) for p in ("float32", "bfloat16")}
            with atomic_file(path) as tmp:
                tmp.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
    seconds = known[key]
    return "bfloat16" if seconds["bfloat16"] < seconds["float32"] else "float32"


@contextlib.contextmanager
def policy(precision: Precision) -> Iterator[None]:
    """Build and train models under ``precision``'s Keras policy inside the block."""
    from autocompress._tf import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def as_float32(model):
    """``model`` rebuilt under the float32 policy with the same weights (itself when already float32)."""
    from autocompress._tf import keras

    if model.dtype_policy.name == "float32" and all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    config = model.get_config()
    for layer in config["layers"]:
        layer["config"]["dtype"] = "float32"
    with policy("float32"):
        rebuilt = model.__class__.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt
