"""Carve a validation split out of the training split: stratified per class, fixed by a seed."""

from __future__ import annotations

import numpy as np

from autocompress.errors import UserError


def check_split_params(val_fraction: float, seed: int) -> None:
    """Reject a validation fraction outside (0, 0.5] or a seed that is not a non-negative integer."""
    if not isinstance(val_fraction, int | float) or not 0 < val_fraction <= 0.5:
        raise UserError(f"val_fraction must be in (0, 0.5], got {val_fraction!r}; pass a value such as 0.1")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")


def split_indices(y: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, validation) indices into ``y``.

    The validation split holds ``round(n * val_fraction)`` samples (at least 1, at most n - 1),
    shared out between classes in proportion to their size (largest remainders get the extra
    ones); which samples of a class go to validation is drawn from ``seed``.
    """
    n = len(y)
    if n < 2:
        raise UserError(f"the training split has {n} image(s); at least 2 are needed to carve out a validation split")
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    counts = np.bincount(y)
    exact = counts * n_val / n
    quota = np.floor(exact).astype(np.int64)
    quota[np.argsort(quota - exact, kind="stable")[: n_val - quota.sum()]] += 1

    shuffled = np.random.default_rng(seed).permutation(n)
    by_class = shuffled[np.argsort(y[shuffled], kind="stable")]  # grouped by class, random within a class
    labels = y[by_class]
    rank = np.arange(n) - (np.cumsum(counts) - counts)[labels]
    in_val = rank < quota[labels]
    return np.sort(by_class[~in_val]), np.sort(by_class[in_val])
