"""Readers for each on-disk dataset form: .npz, IDX (MNIST), CIFAR python batches, image folders.

Every reader returns :class:`Arrays` exactly as stored; :mod:`autocompress.data.validate` checks
and normalises them. Any unreadable input raises a one-line :class:`UserError` naming the file.
"""

from __future__ import annotations

import gzip
import io
import pickle
import re
import struct
import zipfile
import zlib
from math import prod
from pathlib import Path
from typing import NamedTuple

import numpy as np

from autocompress.data._errors import reason
from autocompress.data.tree import FileTree, is_tar_name
from autocompress.errors import UserError

SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_EXPECTED = (
    "an image folder with train/<class>/ and test/<class>/, the four MNIST IDX .gz files, "
    "or CIFAR python batches"
)


class Arrays(NamedTuple):
    """A dataset's train and test arrays as read, plus class names when the source has them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...] | None = None


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
        return _read_idx(tree, root)
    if "data_batch_1" in files or "test_batch" in files:
        return _read_cifar(tree, root, sorted(_cifar10_batches(files), key=_batch_number), "test_batch",
                           b"labels", "batches.meta", b"label_names")
    if "train" in files and "test" in files:
        return _read_cifar(tree, root, ["train"], "test", b"fine_labels", "meta", b"fine_label_names")
    if "train" in dirs or "test" in dirs:
        return _read_images(tree, root)
    raise UserError(f"{tree.where} holds no dataset I can read; expected {_EXPECTED}")


def _join(root: str, name: str) -> str:
    return f"{root}/{name}" if root else name


# IDX (MNIST, Fashion-MNIST)


def _read_idx(tree: FileTree, root: str) -> Arrays:
    arrays = {}
    for key, stem in IDX_NAMES.items():
        rel = next((r for r in (_join(root, stem + ".gz"), _join(root, stem)) if r in tree.files), None)
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


def _cifar10_batches(files: list[str]) -> list[str]:
    return [f for f in files if re.fullmatch(r"data_batch_\d+", f)]


def _batch_number(name: str) -> int:
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


def _read_cifar(tree: FileTree, root: str, train: list[str], test: str, label_key: bytes,
                meta: str, names_key: bytes) -> Arrays:
    needed = [*train, test] if train else ["data_batch_1"]
    missing = [n for n in needed if _join(root, n) not in tree.files]
    if missing:
        raise UserError(f"{tree.where} lacks the CIFAR batch {missing[0]}; re-download the whole archive")
    key = label_key.decode()
    parts = [_read_batch(tree, _join(root, n), key) for n in train]
    x_test, y_test = _read_batch(tree, _join(root, test), key)
    names = None
    if _join(root, meta) in tree.files:
        raw_names = _unpickle(tree, _join(root, meta)).get(names_key.decode())
        if isinstance(raw_names, list) and all(isinstance(n, bytes | str) for n in raw_names):
            names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in raw_names)
    x_train = np.concatenate([x for x, _ in parts])
    y_train = np.concatenate([y for _, y in parts])
    return Arrays(x_train, y_train, x_test, y_test, names)


# image folders


def _natural_mode(mode: str, info: dict) -> str:
    """The plainest of L / LA / RGB / RGBA that holds an image of Pillow ``mode`` without loss of meaning."""
    if mode in ("1", "L", "F") or mode.startswith("I"):  # bilevel, grey, float grey, integer grey
        return "L"
    if mode == "LA":
        return mode
    if mode in ("RGBA", "PA") or "transparency" in info:
        return "RGBA"
    return "RGB"


def _common_mode(modes: set[str]) -> str:
    """The mode every image is converted to: grey stays grey, alpha is kept when any image has it."""
    if modes <= {"L"}:
        return "L"
    if modes <= {"L", "LA"}:
        return "LA"
    return "RGBA" if modes & {"LA", "RGBA"} else "RGB"


def _list_images(tree: FileTree, root: str) -> dict[str, dict[str, list[str]]]:
    """split -> class -> sorted image files, for the train/<class>/<image> layout under ``root``."""
    layout: dict[str, dict[str, list[str]]] = {}
    for split in ("train", "test"):
        folder = _join(root, split)
        if folder not in tree.dirs:
            raise UserError(f"{tree.where} has no {split}/ folder; put images in train/<class>/ and test/<class>/")
        classes = tree.children(folder)[0]
        if not classes:
            raise UserError(f"{tree.describe(folder)} has no class folders; put its images in {split}/<class>/")
        layout[split] = {c: [] for c in classes}
    prefix = _join(root, "")
    for name in tree.files:
        parts = name[len(prefix):].split("/") if name.startswith(prefix) else []
        if len(parts) == 3 and parts[0] in layout and parts[2].lower().endswith(IMAGE_SUFFIXES):
            layout[parts[0]][parts[1]].append(name)
    train, test = set(layout["train"]), set(layout["test"])
    if train != test:
        only = (("train", train - test), ("test", test - train))
        diff = "; ".join(f"only in {split}: {', '.join(sorted(c))}" for split, c in only if c)
        raise UserError(f"{tree.where}: train/ and test/ class folders differ ({diff}); give both the same classes")
    for split, classes in layout.items():
        for cls, names in classes.items():
            if not names:
                folder = tree.describe(_join(root, f"{split}/{cls}"))
                raise UserError(f"{folder} holds no .png/.jpg/.jpeg images; add some or delete it")
            names.sort()
    return layout


def _decode(tree: FileTree, rel: str, first: tuple[str, tuple[int, int]] | None):
    """Open and decode one image; its size is checked against ``first`` (name, size) before decoding."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(tree.read(rel)))
        if first and image.size != first[1]:
            (w, h), (fw, fh) = image.size, first[1]
            raise UserError(
                f"{tree.describe(rel)} is {w}x{h} but {tree.describe(first[0])} is {fw}x{fh}; "
                "resize all images to one size"
            )
        image.load()
    except UserError:
        raise
    except Exception as e:  # Pillow signals bad images with many exception types
        raise UserError(f"{tree.describe(rel)} is not a readable image ({reason(e)}); fix or remove it") from e
    return image


def _read_images(tree: FileTree, root: str) -> Arrays:
    layout = _list_images(tree, root)
    class_names = tuple(layout["train"])
    decoded = {}
    first = None
    for split, classes in layout.items():
        images, labels = [], []
        for label, cls in enumerate(class_names):
            for rel in classes[cls]:
                image = _decode(tree, rel, first)
                first = first or (rel, image.size)
                images.append((rel, image))
                labels.append(label)
        decoded[split] = (images, np.array(labels, dtype=np.int64))
    mode = _common_mode({_natural_mode(im.mode, im.info) for images, _ in decoded.values() for _, im in images})
    x = {split: _stack(tree, images, mode) for split, (images, _) in decoded.items()}
    return Arrays(x["train"], decoded["train"][1], x["test"], decoded["test"][1], class_names)


def _stack(tree: FileTree, images: list, mode: str) -> np.ndarray:
    """One (n, H, W, C) uint8 array from same-sized Pillow images, each converted to ``mode``."""
    pixels = []
    for rel, image in images:
        try:
            pixels.append((image if image.mode == mode else image.convert(mode)).tobytes())
        except (ValueError, OSError) as e:
            raise UserError(
                f"{tree.describe(rel)} cannot be converted to {mode} ({reason(e)}); save it as RGB or greyscale"
            ) from e
    width, height = images[0][1].size
    return np.frombuffer(b"".join(pixels), np.uint8).reshape(len(images), height, width, len(mode))
