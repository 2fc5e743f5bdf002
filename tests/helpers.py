"""Tiny, learnable image data for fast tests: the class is where a bright bar lies."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def bar_images(n: int, size: int = 16, channels: int = 1, classes: int = 3, seed: int = 0):
    """``n`` noisy images whose label is which horizontal band holds a bright bar."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.integers(0, 60, (n, size, size, channels))
    band = size // classes
    for i, label in enumerate(y):
        row = label * band + rng.integers(0, band)
        x[i, row, :, :] = rng.integers(180, 256, (size, channels))
    return x.astype(np.uint8), y.astype(np.int64)


def write_bar_npz(path: Path, train: int = 600, test: int = 200, **kwargs) -> Path:
    x_train, y_train = bar_images(train, seed=1, **kwargs)
    x_test, y_test = bar_images(test, seed=2, **kwargs)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path
