"""The binary dataset forms: IDX files (MNIST, Fashion-MNIST) and CIFAR python batches, read safely."""

from __future__ import annotations

import gzip
import io
import pickle
import re
import struct
import zlib
from math import prod

import numpy as np

from autocompress.data._errors import reason
from autocompress.data.arrays import Arrays, join
from autocompress.data.tree import FileTree
from autocompress.errors import UserError

IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


# IDX (MNIST, Fashion-MNIST)


def read_idx(tree: FileTree, root: str) -> Arrays:
    arrays = {}
    for key, stem in IDX_NAMES.items():
        rel = next((r for r in (join(root, stem + ".gz"), join(root, stem)) if r in tree.files), None)
        if rel is None:
            raise UserError(
                f"{tree.where} is missing {stem}.gz; put all four IDX files (train and t10k images and labels) there"
            )
        data = tree.read(rel)
        if rel.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as e:
                raise UserError(
                    f"{tree.describe(rel)} is not a readable gzip file ({reason(e)}); re-download it"
                ) from e
        arrays[key] = _parse_idx(data, tree.describe(rel))
    return Arrays(**arrays)


def _parse_idx(data: bytes, where: str) -> np.ndarray:
    """Decode one IDX file: zero bytes, a type code, the number of dims, big-endian dims, data."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise UserError(f"{where} is not an IDX file (bad header); re-download it")
    header = 4 + 4 * data[3]
    if len(data) < header:
        raise UserError(f"{where} is truncated inside its IDX header; re-download it")
    dims = struct.unpack(f">{data[3]}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = prod(dims) * dtype.itemsize
    if len(data) - header != expected:
        raise UserError(
            f"{where} holds {len(data) - header} data bytes but its IDX header {dims} says {expected}; re-download it"
        )
    return np.frombuffer(data, dtype, offset=header).reshape(dims)


# CIFAR python batches


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only, so a batch file cannot run code."""

    _ALLOWED = {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str):
        module = re.sub(r"^numpy\.core\b", "numpy._core", module)
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def cifar10_batches(files: list[str]) -> list[str]:
    return [f for f in files if re.fullmatch(r"data_batch_\d+", f)]


def batch_number(name: str) -> int:
    return int(name.rsplit("_", 1)[1])


def _unpickle(tree: FileTree, rel: str) -> dict:
    try:
        batch = _ArrayUnpickler(io.BytesIO(tree.read(rel)), encoding="bytes").load()
    except UserError:
        raise
    except Exception as e:  # unpickling untrusted bytes can fail in many ways; all mean "corrupt"
        raise UserError(f"{tree.describe(rel)} is not a readable CIFAR batch ({reason(e)}); re-download it") from e
    if not isinstance(batch, dict):
        raise UserError(f"{tree.describe(rel)} is not a CIFAR batch (no dictionary inside); re-download it")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def _read_batch(tree: FileTree, rel: str, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(tree, rel)
    where = tree.describe(rel)
    if "data" not in batch or label_key not in batch:
        raise UserError(f"{where} lacks '{label_key}' or 'data'; re-download the CIFAR batches")
    data, labels = np.asarray(batch["data"]), np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UserError(f"{where}: data is {data.dtype} {data.shape}, expected uint8 (n, 3072); re-download it")
    if labels.shape != (len(data),):
        raise UserError(f"{where} has {labels.size} labels for {len(data)} images; re-download it")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar(tree: FileTree, root: str, train: list[str], test: str, label_key: bytes,
                meta: str, names_key: bytes) -> Arrays:
    needed = [*train, test] if train else ["data_batch_1"]
    missing = [n for n in needed if join(root, n) not in tree.files]
    if missing:
        raise UserError(f"{tree.where} lacks the CIFAR batch {missing[0]}; re-download the whole archive")
    key = label_key.decode()
    parts = [_read_batch(tree, join(root, n), key) for n in train]
    x_test, y_test = _read_batch(tree, join(root, test), key)
    names = None
    if join(root, meta) in tree.files:
        raw_names = _unpickle(tree, join(root, meta)).get(names_key.decode())
        if isinstance(raw_names, list) and all(isinstance(n, bytes | str) for n in raw_names):
            names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in raw_names)
    x_train = np.concatenate([x for x, _ in parts])
    y_train = np.concatenate([y for _, y in parts])
    return Arrays(x_train, y_train, x_test, y_test, names)
