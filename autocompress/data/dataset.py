"""The :class:`Dataset` every later stage trains on, and :func:`load_dataset`, which builds it."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autocompress.data.cache import cached, default_cache_dir
from autocompress.data.formats import Arrays, is_slow_source, read_source
from autocompress.data.registry import CLASS_NAMES, KNOWN_DATASETS, canonical_name, data_dirs, download, locate_dataset
from autocompress.data.splits import check_split_params, split_indices
from autocompress.data.tree import TAR_SUFFIXES
from autocompress.data.validate import normalize
from autocompress.errors import UserError

_SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Train / validation / test arrays (read-only): uint8 NHWC images and int64 labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    fingerprint: str

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.x_train)}, val={len(self.x_val)}, test={len(self.x_test)}, "
            f"input_shape={self.input_shape}, num_classes={self.num_classes}, source={self.source!r})"
        )


def load_dataset(
    dataset: str,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """Load a known dataset by name, or any supported file or folder by path, and split off validation.

    ``dataset`` is one of :data:`KNOWN_DATASETS` (looked for in :func:`data_dirs`, else
    downloaded by Keras) or a path to an .npz file, an IDX / CIFAR-batches / image folder, or a
    tar archive of one. ``val_fraction`` of the training split (stratified, drawn from ``seed``)
    becomes the validation split; the test split is kept as is. Bad input raises UserError.
    """
    check_split_params(val_fraction, seed)
    name, source, arrays = _load_arrays(str(dataset), data_dir, cache_dir)
    train, val = split_indices(arrays.y_train, val_fraction, seed)
    parts = {
        "x_train": arrays.x_train[train], "y_train": arrays.y_train[train],
        "x_val": arrays.x_train[val], "y_val": arrays.y_train[val],
        "x_test": np.ascontiguousarray(arrays.x_test), "y_test": np.ascontiguousarray(arrays.y_test),
    }
    for array in parts.values():
        array.flags.writeable = False
    return Dataset(
        name=name,
        **parts,
        class_names=arrays.class_names,
        source=source,
        fingerprint=_fingerprint(parts, arrays.class_names, val_fraction, seed),
    )


def _load_arrays(dataset: str, data_dir: str | Path | None, cache_dir: str | Path | None) -> tuple[str, str, Arrays]:
    """(name, source, validated arrays) for a known name or a path."""
    known = canonical_name(dataset)
    if known:
        path = locate_dataset(known, data_dir)
        if path is None:
            return known, "keras.datasets", normalize(download(known, data_dir), f"keras.datasets.{known}")
        return known, str(path), _read(path, cache_dir, CLASS_NAMES[known])
    path = _user_path(dataset, data_dir)
    return _stem(path), str(path), _read(path, cache_dir, None)


def dataset_name(dataset: str, data_dir: str | Path | None = None) -> str:
    """The name :func:`load_dataset` gives ``dataset``, without reading it; one line if a path
    names nothing."""
    return canonical_name(dataset) or _stem(_user_path(dataset, data_dir))


def _read(path: Path, cache_dir: str | Path | None, default_names: tuple[str, ...] | None) -> Arrays:
    """Read and validate ``path``, through the cache when it needs decoding."""
    arrays = cached(path, default_cache_dir(cache_dir), read_source) if is_slow_source(path) else read_source(path)
    return normalize(arrays, str(path), default_names)


def _user_path(dataset: str, data_dir: str | Path | None) -> Path:
    """The existing file or folder ``dataset`` names; a relative path may also sit in a data dir."""
    path = Path(dataset).expanduser()
    if not path.exists() and not path.is_absolute():
        path = next((d / path for d in data_dirs(data_dir) if (d / path).exists()), path)
    if path.exists():
        return path.resolve()
    if "/" in dataset or os.sep in dataset or dataset.lower().endswith((".npz", *TAR_SUFFIXES)):
        raise UserError(f"{dataset} does not exist; check the path to the .npz file, folder or archive")
    raise UserError(
        f"unknown dataset {dataset!r}; use one of {', '.join(KNOWN_DATASETS)}, "
        "or a path to an .npz file, an image / IDX / CIFAR folder, or a .tar.gz of one"
    )


def _stem(path: Path) -> str:
    """A dataset's name from its path: the file name without .npz / tar suffixes, or the folder name."""
    name = path.name
    for suffix in (".npz", *TAR_SUFFIXES):
        if name.lower().endswith(suffix) and path.is_file():
            return name[: -len(suffix)]
    return name


def _fingerprint(parts: dict[str, np.ndarray], class_names: tuple[str, ...], val_fraction: float, seed: int) -> str:
    """sha256 (16 hex digits) of the split arrays and the parameters that made them."""
    digest = hashlib.sha256(f"val_fraction={val_fraction!r} seed={seed} classes={class_names!r}".encode())
    for key in _SPLITS:
        array = parts[key]
        digest.update(f"|{key} {array.dtype.str} {array.shape}|".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()[:16]
