"""Readers for each on-disk dataset form: .npz here, IDX (MNIST) and CIFAR python batches in
:mod:`.batches`, image folders in :mod:`.images`.

Every reader returns :class:`Arrays` exactly as stored; :mod:`autocompress.data.validate` checks
and normalises them. Any unreadable input raises a one-line :class:`UserError` naming the file.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from autocompress.data._errors import reason
from autocompress.data.arrays import SPLIT_KEYS, Arrays
from autocompress.data.batches import IDX_NAMES, batch_number, cifar10_batches, read_cifar, read_idx
from autocompress.data.images import read_images
from autocompress.data.tree import FileTree, is_tar_name
from autocompress.errors import UserError

_EXPECTED = (
    "an image folder with train/<class>/ and test/<class>/, the four MNIST IDX .gz files, "
    "or CIFAR python batches"
)


def read_source(path: Path) -> Arrays:
    """Read a dataset from an .npz file, a folder or a tar archive."""
    if path.is_dir() or is_tar_name(path):
        return read_tree(FileTree.open(path))
    if path.suffix.lower() == ".npz":
        return read_npz(path)
    raise UserError(f"{path} is not a dataset form I can read; pass an .npz file, a folder or a .tar.gz archive")


def is_slow_source(path: Path) -> bool:
    """Whether reading ``path`` means decoding (archives, image folders, CIFAR batches), so is worth caching."""
    return is_tar_name(path) or (path.is_dir() and not has_idx_files(path))


def has_idx_files(folder: Path) -> bool:
    """Whether ``folder`` directly holds the MNIST-style IDX training images."""
    stem = IDX_NAMES["x_train"]
    return (folder / f"{stem}.gz").is_file() or (folder / stem).is_file()


# --- .npz ---------------------------------------------------------------------------------------


def read_npz(path: Path) -> Arrays:
    """Read ``x_train``, ``y_train``, ``x_test``, ``y_test`` (and optional ``class_names``) from an .npz."""
    fix = "save it with np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)"
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path} is not a readable .npz file ({reason(e)}); {fix}") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(f"{path} holds a single array, not an .npz archive; {fix}")
    with archive:
        missing = [k for k in SPLIT_KEYS if k not in archive.files]
        if missing:
            raise UserError(f"{path} lacks {', '.join(missing)}; {fix}")
        try:
            arrays = {k: archive[k] for k in SPLIT_KEYS}
            names = archive["class_names"] if "class_names" in archive.files else None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as e:
            raise UserError(
                f"{path} could not be read ({reason(e)}); re-create it from numeric arrays with np.savez"
            ) from e
    if names is not None and (names.ndim != 1 or names.dtype.kind != "U"):
        raise UserError(f"{path}: class_names must be a 1-D array of strings; save np.array(['cat', 'dog', ...])")
    return Arrays(**arrays, class_names=None if names is None else tuple(str(n) for n in names))


# --- file trees (folders and archives) ----------------------------------------------------------


def read_tree(tree: FileTree) -> Arrays:
    """Recognise the dataset layout inside a folder or archive and read it."""
    root = tree.root()
    dirs, files = tree.children(root)
    if any(f.startswith(tuple(IDX_NAMES.values())) for f in files):
        return read_idx(tree, root)
    if "data_batch_1" in files or "test_batch" in files:
        return read_cifar(tree, root, sorted(cifar10_batches(files), key=batch_number), "test_batch",
                           b"labels", "batches.meta", b"label_names")
    if "train" in files and "test" in files:
        return read_cifar(tree, root, ["train"], "test", b"fine_labels", "meta", b"fine_label_names")
    if "train" in dirs or "test" in dirs:
        return read_images(tree, root)
    raise UserError(f"{tree.where} holds no dataset I can read; expected {_EXPECTED}")


__all__ = ["Arrays", "SPLIT_KEYS", "IDX_NAMES", "read_source", "read_npz", "read_tree", "is_slow_source",
           "has_idx_files"]
