"""Check arrays read from any source and bring them to one form: uint8 NHWC images, int64 labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autocompress.data.formats import Arrays
from autocompress.errors import UserError


def normalize(arrays: Arrays, where: str, default_names: Sequence[str] | None = None) -> Arrays:
    """Validate ``arrays`` read from ``where``; class names come from the source, else the defaults, else "0".."K-1"."""
    x_train = _images(arrays.x_train, "x_train", where)
    x_test = _images(arrays.x_test, "x_test", where)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise UserError(
            f"{where}: train images are {_hwc(x_train)} but test images are {_hwc(x_test)}; use one image size"
        )
    names = arrays.class_names or (tuple(default_names) if default_names else None)
    limit = len(names) if names else len(x_train)
    y_train = _labels(arrays.y_train, "y_train", len(x_train), where)
    if y_train.max() >= limit:
        known = f"there are {limit} classes" if names else f"there are only {limit} training images"
        raise UserError(f"{where}: y_train has label {y_train.max()} but {known}; labels must be class indices 0..K-1")
    num_classes = len(names) if names else int(y_train.max()) + 1
    y_test = _labels(arrays.y_test, "y_test", len(x_test), where)
    if y_test.max() >= num_classes:
        raise UserError(
            f"{where}: y_test has label {y_test.max()} but the training classes are 0..{num_classes - 1}; "
            "test labels must be classes seen in training"
        )
    if num_classes < 2:
        raise UserError(f"{where} has a single class; a classifier needs labels from at least 2 classes")
    names = names or tuple(str(i) for i in range(num_classes))
    return Arrays(x_train, y_train, x_test, y_test, tuple(names))


def _hwc(x: np.ndarray) -> str:
    return "x".join(map(str, x.shape[1:]))


def _images(x: np.ndarray, key: str, where: str) -> np.ndarray:
    """``x`` as uint8 (n, H, W, C): grey (n, H, W) gains a channel axis; numeric pixels in 0..255 are cast."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or not 1 <= x.shape[3] <= 4:
        raise UserError(f"{where}: {key} has shape {x.shape}; expected (n, H, W) or (n, H, W, C) with C from 1 to 4")
    if 0 in x.shape:
        raise UserError(f"{where}: {key} has shape {x.shape} and so no pixels; it needs at least one image")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "iuf":
        raise UserError(f"{where}: {key} has dtype {x.dtype}; store pixels as uint8 values 0..255")
    if x.dtype.kind == "f":
        if not np.isfinite(x).all():
            raise UserError(f"{where}: {key} contains NaN or infinite pixels; store pixels as uint8 values 0..255")
        if x.max() <= 1.0:
            raise UserError(f"{where}: {key} looks scaled to 0..1; store raw pixels as uint8 values 0..255")
        x = np.rint(x)
    low, high = x.min(), x.max()
    if low < 0 or high > 255:
        raise UserError(f"{where}: {key} has pixel values from {low} to {high}; store pixels as uint8 values 0..255")
    return x.astype(np.uint8)


def _labels(y: np.ndarray, key: str, count: int, where: str) -> np.ndarray:
    """``y`` as int64 (n,): one non-negative integer class index per image."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UserError(
            f"{where}: {key} has shape {y.shape}; expected one integer class index per image, shape (n,) "
            "(for one-hot labels save y.argmax(1))"
        )
    if len(y) != count:
        raise UserError(f"{where}: {key} has {len(y)} labels for {count} images; give exactly one label per image")
    if y.dtype.kind not in "iuf" or (y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.rint(y)).all())):
        raise UserError(f"{where}: {key} holds non-integer labels ({y.dtype}); store class indices 0..K-1 as integers")
    if y.min() < 0:
        raise UserError(f"{where}: {key} has negative label {y.min()}; labels must be class indices 0..K-1")
    if y.max() >= 2**31:
        raise UserError(f"{where}: {key} has label {y.max()}; labels must be class indices 0..K-1")
    return y.astype(np.int64)
