"""In-memory arrays as a batched, shuffled, prefetched ``tf.data`` pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from autocompress._tf import tf


def make_tf_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    extra: np.ndarray | None = None,
    num_classes: int | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 pixels in 0..255, unscaled, target); the order is fixed by ``seed``.

    The target is the int64 label, or, when ``extra`` is given (e.g. teacher logits, one row per
    image), the float32 row ``concat(one_hot(y, num_classes), extra)``; ``num_classes`` defaults
    to ``y.max() + 1``. Shuffling draws a new order each epoch from the whole split; the last
    batch may be smaller.
    """
    from autocompress._tf import tf

    if len(x) == 0 or len(x) != len(y) or (extra is not None and len(extra) != len(y)):
        lengths = (len(x), len(y), None if extra is None else len(extra))
        raise ValueError(f"x, y and extra need the same, non-zero length, got {lengths}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    target = np.asarray(y, dtype=np.int64)
    if extra is not None:
        width = int(target.max()) + 1 if num_classes is None else num_classes
        one_hot = np.eye(width, dtype=np.float32)[target]
        target = np.concatenate([one_hot, np.asarray(extra, np.float32).reshape(len(y), -1)], axis=1)
    images, targets = tf.constant(x), tf.constant(target)

    def gather(indices):
        return tf.cast(tf.gather(images, indices), tf.float32), tf.gather(targets, indices)

    order = tf.data.Dataset.range(len(x))
    if shuffle:
        order = order.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return order.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
