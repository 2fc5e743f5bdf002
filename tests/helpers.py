"""Tiny, learnable image data for fast tests: the class is a bright bar's shape
(horizontal, vertical, or a cross), wherever it lies, so flips and shifts keep the label."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def bar_images(n: int, size: int = 16, channels: int = 1, classes: int = 3, seed: int = 0):
    """``n`` noisy images: class 0 a horizontal bar, 1 a vertical bar, 2 both."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.integers(0, 60, (n, size, size, channels))
    for i, label in enumerate(y):
        row, column = rng.integers(2, size - 2, 2)
        if label in (0, 2):
            x[i, row, :, :] = rng.integers(180, 256, (size, channels))
        if label in (1, 2):
            x[i, :, column, :] = rng.integers(180, 256, (size, channels))
    return x.astype(np.uint8), y.astype(np.int64)


def write_bar_npz(path: Path, train: int = 600, test: int = 200, **kwargs) -> Path:
    x_train, y_train = bar_images(train, seed=1, **kwargs)
    x_test, y_test = bar_images(test, seed=2, **kwargs)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path
