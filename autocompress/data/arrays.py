"""What every dataset reader returns, and the path helper the readers share."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")


class Arrays(NamedTuple):
    """A dataset's train and test arrays as read, plus class names when the source has them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...] | None = None


def join(root: str, name: str) -> str:
    """``name`` below ``root`` in a :class:`~autocompress.data.tree.FileTree` ("" is its top)."""
    return f"{root}/{name}" if root else name
