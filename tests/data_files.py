"""Writers of tiny datasets in every source form the loaders read (npz, IDX, CIFAR batches, image
folders, archives), shared by the data tests."""

from __future__ import annotations

import gzip
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from autocompress.data import registry


def tiny_arrays(n_train=40, n_test=10, classes=4, shape=(6, 5), seed=0):
    """Arrays whose images are all different (pixel [0, 0] and [0, 1] encode the index)."""
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, (n_train, *shape), dtype=np.uint8)
    ids = np.arange(n_train).reshape(-1, *[1] * (len(shape) - 2))
    x_train[:, 0, 0], x_train[:, 0, 1] = ids % 256, ids // 256
    y_train = np.arange(n_train) % classes
    x_test = rng.integers(0, 256, (n_test, *shape), dtype=np.uint8)
    y_test = np.arange(n_test) % classes
    return x_train, y_train, x_test, y_test


def write_npz(path: Path, **overrides) -> Path:
    x_train, y_train, x_test, y_test = tiny_arrays()
    arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def idx_bytes(a: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.astype(np.uint8).tobytes()


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_idx(folder: Path, gz: bool = True, arrays=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in zip(IDX_FILES, arrays or tiny_arrays(shape=(28, 28), classes=10)):
        data = idx_bytes(np.asarray(a))
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


def cifar_batch(n: int, label_key: bytes, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(i) for i in np.arange(n) % 10]
    return pickle.dumps({b"data": data, label_key: labels, b"batch_label": b"x"}, protocol=2)


def write_cifar10(folder: Path, per_batch: int = 5) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in (1, 2):
        (folder / f"data_batch_{i}").write_bytes(cifar_batch(per_batch, b"labels", i))
    (folder / "test_batch").write_bytes(cifar_batch(per_batch, b"labels", 9))
    names = [n.encode() for n in registry.CLASS_NAMES["cifar10"]]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}, protocol=2))
    (folder / "readme.html").write_text("<html></html>")
    return folder


def write_images(root: Path, classes=("cat", "dog", "emu"), per_class=4, size=(5, 7), mode="RGB", fmt="PNG") -> Path:
    """root/{train,test}/<class>/NN.<fmt>, each image one flat colour: value 10 * class + index."""
    for split in ("train", "test"):
        for c, cls in enumerate(classes):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                colour = (10 * c + i,) * len(mode) if len(mode) > 1 else 10 * c + i
                Image.new(mode, size, colour).save(folder / f"{i:02d}.{fmt.lower()}", fmt)
    return root


def make_tar(source: Path, target: Path, arcname: str | None = None) -> Path:
    mode = "w:gz" if target.name.endswith(("gz", "tgz")) else "w"
    with tarfile.open(target, mode) as tar:
        tar.add(source, arcname=arcname or source.name)
    return target
