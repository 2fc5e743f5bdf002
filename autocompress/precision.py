"""Training precision: bfloat16 mixed precision where the processor computes it natively.

Keras' ``mixed_bfloat16`` policy computes layers in bfloat16 and keeps variables, losses,
BatchNorm statistics and the layers we mark ``dtype="float32"`` (the logits) in float32. A model
trained that way is saved as a float32 model (the same layers and weights, rebuilt under the
float32 policy: :func:`as_float32`), so pruning, quantization and conversion never see bfloat16.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Iterator, Literal

from autocompress.errors import UserError

Precision = Literal["float32", "bfloat16"]
CHOICES = ("auto", "float32", "bfloat16")
_NATIVE_FLAGS = ("avx512_bf16", "amx_bf16")


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
    """``auto`` -> bfloat16 where the processor has it natively, float32 elsewhere."""
    if choice not in CHOICES:
        raise UserError(f"precision must be one of {', '.join(CHOICES)} (got {choice!r}); auto picks bfloat16 "
                        "where the processor has native bfloat16 instructions")
    if choice == "auto":
        return "bfloat16" if native_bfloat16() else "float32"
    return choice


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
