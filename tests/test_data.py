"""Tests for autocompress.data: every source form, splits, cache, errors, lookup, tf.data pipeline."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autocompress.data import (
    KNOWN_DATASETS,
    Dataset,
    data_dirs,
    default_cache_dir,
    load_dataset,
    locate_dataset,
    make_tf_dataset,
)
from autocompress.data import cache, registry
from autocompress.data.formats import Arrays
from autocompress.errors import UserError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="shared datasets folder not present")


from data_files import cifar_batch, make_tar, tiny_arrays, write_cifar10, write_idx, write_images, write_npz


def user_error(call, *fragments: str) -> str:
    """Run ``call``, expect a one-line UserError containing every fragment; return its message."""
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No real home, data or cache folders leak into a test."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("AUTOCOMPRESS_DATA_DIR", "AUTOCOMPRESS_CACHE_DIR", "KERAS_HOME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


def check_shapes(ds: Dataset, n_train: int, n_test: int, shape: tuple[int, int, int], classes: int):
    assert isinstance(ds, Dataset)
    n_val = round(n_train * 0.1)
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (n_train - n_val, n_val, n_test)
    assert ds.input_shape == shape and ds.num_classes == classes == len(ds.class_names)
    for x, y in ((ds.x_train, ds.y_train), (ds.x_val, ds.y_val), (ds.x_test, ds.y_test)):
        assert x.dtype == np.uint8 and x.shape[1:] == shape
        assert y.dtype == np.int64 and y.shape == (len(x),)
        assert 0 <= y.min() and y.max() < classes


# --- every source form --------------------------------------------------------------------------


def test_npz_loads_with_channel_axis_and_digit_names(tmp_path):
    ds = load_dataset(write_npz(tmp_path / "digits.npz"))
    check_shapes(ds, 40, 10, (6, 5, 1), 4)
    assert ds.name == "digits" and ds.class_names == ("0", "1", "2", "3")
    assert ds.source == str((tmp_path / "digits.npz").resolve())
    x_train, y_train, x_test, y_test = tiny_arrays()
    np.testing.assert_array_equal(ds.x_test[..., 0], x_test)
    np.testing.assert_array_equal(ds.y_test, y_test)


def test_npz_accepts_column_labels_float_pixels_rgb_and_class_names(tmp_path):
    x_train, y_train, x_test, y_test = tiny_arrays(shape=(4, 4, 3))
    path = write_npz(
        tmp_path / "f.npz", x_train=x_train.astype(np.float32), y_train=y_train[:, None],
        x_test=x_test.astype(np.int32), y_test=y_test.astype(np.float64),
        class_names=np.array(["a", "b", "c", "d"]),
    )
    ds = load_dataset(path)
    check_shapes(ds, 40, 10, (4, 4, 3), 4)
    assert ds.class_names == ("a", "b", "c", "d")
    np.testing.assert_array_equal(ds.x_test, x_test)


def test_idx_folder_gz_and_plain(tmp_path):
    for gz in (True, False):
        ds = load_dataset(write_idx(tmp_path / f"idx{gz}", gz=gz))
        check_shapes(ds, 40, 10, (28, 28, 1), 10)
        np.testing.assert_array_equal(ds.y_test, np.arange(10) % 10)


def test_cifar10_batches_folder_and_archive(tmp_path, cache_dir):
    folder = write_cifar10(tmp_path / "cifar-10-batches-py")
    ds = load_dataset(folder, cache_dir=cache_dir)
    check_shapes(ds, 10, 5, (32, 32, 3), 10)
    assert ds.class_names == registry.CLASS_NAMES["cifar10"]
    raw = pickle.loads((folder / "test_batch").read_bytes())[b"data"]
    assert ds.x_test[1, 2, 3].tolist() == [raw[1, 2 * 32 + 3], raw[1, 1024 + 2 * 32 + 3], raw[1, 2048 + 2 * 32 + 3]]
    archive = load_dataset(make_tar(folder, tmp_path / "cifar-10-python.tar.gz"), cache_dir=cache_dir)
    np.testing.assert_array_equal(archive.x_test, ds.x_test)
    assert archive.name == "cifar-10-python" and archive.fingerprint == ds.fingerprint


def test_cifar100_uses_fine_labels_and_names(tmp_path, cache_dir):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "train").write_bytes(cifar_batch(20, b"fine_labels", 1))
    (folder / "test").write_bytes(cifar_batch(5, b"fine_labels", 2))
    names = [n.encode() for n in registry.CLASS_NAMES["cifar100"]]
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": names}, protocol=2))
    ds = load_dataset(folder, cache_dir=cache_dir)
    assert ds.num_classes == 100 == len(set(ds.class_names)) and ds.class_names[:2] == ("apple", "aquarium_fish")
    check_shapes(ds, 20, 5, (32, 32, 3), 100)


@pytest.mark.parametrize(
    "mode,fmt,channels", [("RGB", "PNG", 3), ("L", "PNG", 1), ("RGBA", "PNG", 4), ("RGB", "JPEG", 3)]
)
def test_image_folder_modes(tmp_path, cache_dir, mode, fmt, channels):
    ds = load_dataset(write_images(tmp_path / "pics", mode=mode, fmt=fmt), cache_dir=cache_dir)
    check_shapes(ds, 12, 12, (7, 5, channels), 3)
    assert ds.class_names == ("cat", "dog", "emu") and ds.name == "pics"
    if fmt == "PNG":  # lossless: the label follows the folder, the pixel the file
        assert ds.x_test[5, 0, 0, 0] == 10 * ds.y_test[5] + 1


def test_image_folder_mixed_grey_and_colour_becomes_rgb(tmp_path, cache_dir):
    root = write_images(tmp_path / "mixed", mode="RGB")
    Image.new("L", (5, 7), 200).save(root / "train" / "cat" / "00.png")
    ds = load_dataset(root, cache_dir=cache_dir)
    assert ds.input_shape == (7, 5, 3)
    assert any((x == 200).all() for x in np.concatenate([ds.x_train, ds.x_val]))


def test_image_folder_under_one_top_folder_ignores_hidden_and_other_files(tmp_path, cache_dir):
    write_images(tmp_path / "outer" / "data")
    (tmp_path / "outer" / "data" / "train" / "cat" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "outer" / "data" / "train" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "outer" / "data" / "train" / "._dog").mkdir()
    ds = load_dataset(tmp_path / "outer", cache_dir=cache_dir)
    assert ds.class_names == ("cat", "dog", "emu") and len(ds.x_test) == 12


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz", ".tar"])
def test_image_archive(tmp_path, cache_dir, suffix):
    folder = write_images(tmp_path / "src" / "cifar10", fmt="JPEG")
    ds = load_dataset(make_tar(folder, tmp_path / f"pics{suffix}"), cache_dir=cache_dir)
    check_shapes(ds, 12, 12, (7, 5, 3), 3)
    assert ds.name == "pics" and ds.class_names == ("cat", "dog", "emu")
    np.testing.assert_array_equal(ds.x_test, load_dataset(folder, cache_dir=cache_dir).x_test)


# --- splits and fingerprints --------------------------------------------------------------------


def _ids(x: np.ndarray) -> set[int]:
    return set((x[:, 0, 0, 0].astype(int) + 256 * x[:, 0, 1, 0].astype(int)).tolist())


def test_split_is_stratified_disjoint_complete_and_seeded(tmp_path):
    path = write_npz(tmp_path / "d.npz", **dict(zip(("x_train", "y_train"), tiny_arrays(n_train=300)[:2])))
    a = load_dataset(path, val_fraction=0.2, seed=1)
    assert len(a.x_val) == 60 and np.bincount(a.y_val).tolist() == [15, 15, 15, 15]
    train, val = _ids(a.x_train), _ids(a.x_val)
    assert not train & val and train | val == set(range(300))
    assert np.array_equal(a.y_val, np.array(sorted(val)) % 4)  # labels stay with their images
    b = load_dataset(path, val_fraction=0.2, seed=1)
    c = load_dataset(path, val_fraction=0.2, seed=2)
    assert _ids(b.x_val) == val and _ids(c.x_val) != val
    assert a.fingerprint == b.fingerprint != c.fingerprint
    np.testing.assert_array_equal(a.x_test, c.x_test)


@pytest.mark.parametrize("fraction", [0, -0.1, 0.51, 1.0, float("nan"), "0.1"])
def test_val_fraction_out_of_range(tmp_path, fraction):
    user_error(lambda: load_dataset(write_npz(tmp_path / "d.npz"), val_fraction=fraction), "val_fraction")


def test_fingerprint_follows_the_data(tmp_path):
    path = write_npz(tmp_path / "d.npz")
    first = load_dataset(path).fingerprint
    assert len(first) == 16 and int(first, 16) >= 0
    assert load_dataset(path).fingerprint == first
    x_test = tiny_arrays()[2].copy()
    x_test[0, 0, 0] ^= 1
    assert load_dataset(write_npz(path, x_test=x_test)).fingerprint != first
    assert load_dataset(path, val_fraction=0.2).fingerprint != load_dataset(path, val_fraction=0.1).fingerprint


def test_dataset_arrays_are_read_only_and_repr_is_short(tmp_path):
    ds = load_dataset(write_npz(tmp_path / "d.npz"))
    with pytest.raises(ValueError):
        ds.x_train[0, 0, 0, 0] = 1
    assert repr(ds).startswith("Dataset('d', train=36, val=4, test=10") and len(repr(ds)) < 300


# --- cache --------------------------------------------------------------------------------------


def cache_entries(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "datasets").iterdir())


def test_cache_is_written_then_served(tmp_path, cache_dir):
    root = write_images(tmp_path / "pics")
    first = load_dataset(root, cache_dir=cache_dir)
    [entry] = cache_entries(cache_dir)
    assert entry.suffix == ".npz" and entry.name.startswith("pics-")
    # Prove the second load reads the entry, not the images: plant different pixels in it.
    with np.load(entry) as stored:
        planted = {k: stored[k] for k in stored.files}
    planted["x_test"] = np.full_like(planted["x_test"], 77)
    np.savez(entry, **planted)
    mtime = entry.stat().st_mtime_ns
    second = load_dataset(root, cache_dir=cache_dir)
    assert (second.x_test == 77).all() and second.class_names == first.class_names
    assert cache_entries(cache_dir) == [entry] and entry.stat().st_mtime_ns == mtime


def test_changed_source_is_never_served_stale(tmp_path, cache_dir):
    root = write_images(tmp_path / "pics")
    load_dataset(root, cache_dir=cache_dir)
    [old] = cache_entries(cache_dir)
    Image.new("RGB", (5, 7), (250, 250, 250)).save(root / "test" / "cat" / "00.png")
    ds = load_dataset(root, cache_dir=cache_dir)
    assert (ds.x_test[0] == 250).all()
    [new] = cache_entries(cache_dir)
    assert new != old  # the stale entry is replaced, not kept beside the new one

    archive = make_tar(root, tmp_path / "pics.tar.gz")
    load_dataset(archive, cache_dir=cache_dir)
    Image.new("RGB", (5, 7), (3, 3, 3)).save(root / "test" / "cat" / "00.png")
    make_tar(root, archive)
    assert (load_dataset(archive, cache_dir=cache_dir).x_test[0] == 3).all()


def test_damaged_cache_entry_is_rebuilt(tmp_path, cache_dir):
    root = write_images(tmp_path / "pics")
    expected = load_dataset(root, cache_dir=cache_dir).x_test
    [entry] = cache_entries(cache_dir)
    entry.write_bytes(b"not a zip")
    np.testing.assert_array_equal(load_dataset(root, cache_dir=cache_dir).x_test, expected)
    assert entry.stat().st_size > 100


def test_atomic_write_leaves_no_temporary_files(tmp_path, cache_dir):
    load_dataset(write_images(tmp_path / "pics"), cache_dir=cache_dir)
    assert [p.suffix for p in cache_entries(cache_dir)] == [".npz"]

    class Unsavable:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("cannot be saved")

    target = tmp_path / "atomic" / "entry.npz"
    with pytest.raises(RuntimeError):
        cache._write_atomic(target, Arrays(Unsavable(), np.zeros(1), np.zeros(1), np.zeros(1)))
    assert list(target.parent.iterdir()) == []


def test_unwritable_cache_only_warns(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="could not write the dataset cache"):
        ds = load_dataset(write_images(tmp_path / "pics"), cache_dir=blocker)
    assert len(ds.x_test) == 12


def test_npz_and_idx_are_not_cached(tmp_path, cache_dir):
    load_dataset(write_npz(tmp_path / "d.npz"), cache_dir=cache_dir)
    load_dataset(write_idx(tmp_path / "idx"), cache_dir=cache_dir)
    assert not cache_dir.exists()


# --- bad input ----------------------------------------------------------------------------------


def test_unknown_name_and_missing_paths(tmp_path):
    message = user_error(lambda: load_dataset("imagenet"), "imagenet", "path")
    assert all(name in message for name in KNOWN_DATASETS)
    user_error(lambda: load_dataset(str(tmp_path / "nope.npz")), "nope.npz", "does not exist")
    user_error(lambda: load_dataset("nope.tar.gz"), "nope.tar.gz", "does not exist")
    (tmp_path / "notes.txt").write_text("hello")
    user_error(lambda: load_dataset(tmp_path / "notes.txt"), "notes.txt", ".npz")
    (tmp_path / "empty").mkdir()
    user_error(lambda: load_dataset(tmp_path / "empty"), "empty", "image folder")


def test_bad_npz_files(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    user_error(lambda: load_dataset(garbage), "garbage.npz")
    good = write_npz(tmp_path / "good.npz").read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good[: len(good) // 2])
    user_error(lambda: load_dataset(truncated), "truncated.npz")
    user_error(lambda: load_dataset(write_npz(tmp_path / "nokeys.npz", y_test=None)), "nokeys.npz", "y_test")
    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros(3))
    user_error(lambda: load_dataset(single), "single.npz", "single array")
    pickled = write_npz(tmp_path / "objects.npz", x_train=np.array([object()] * 40, dtype=object))
    user_error(lambda: load_dataset(pickled), "objects.npz")


def _labels(n, *values):
    y = np.arange(n) % 4
    y[: len(values)] = values
    return y


@pytest.mark.parametrize(
    "overrides,fragment",
    [
        ({"y_train": _labels(40, -1)}, "negative"),
        ({"y_train": _labels(40).astype(float) + 0.5}, "non-integer"),
        ({"y_train": np.array(["a"] * 40)}, "non-integer"),
        ({"y_test": _labels(10, 4)}, "y_test has label 4"),
        ({"y_train": np.zeros(40, int), "y_test": np.zeros(10, int)}, "single class"),
        ({"y_train": _labels(39)}, "39 labels for 40 images"),
        ({"y_train": np.eye(4)[np.arange(40) % 4]}, "argmax"),
        ({"y_train": _labels(40, 10**6)}, "label 1000000"),
        ({"x_train": np.zeros(40, np.uint8)}, "x_train has shape (40,)"),
        ({"x_train": np.zeros((40, 6, 5, 5), np.uint8)}, "C from 1 to 4"),
        ({"x_train": np.zeros((0, 6, 5), np.uint8), "y_train": np.zeros(0, int)}, "no pixels"),
        ({"x_train": np.full((40, 6, 5), 300.0)}, "0..255"),
        ({"x_train": np.full((40, 6, 5), -1, np.int16)}, "0..255"),
        ({"x_train": np.full((40, 6, 5), np.nan)}, "NaN"),
        ({"x_train": np.full((40, 6, 5), 0.5)}, "scaled to 0..1"),
        ({"x_train": np.full((40, 6, 5), "a")}, "dtype"),
        ({"x_train": np.zeros((40, 6, 5), complex)}, "dtype"),
        ({"x_test": np.zeros((10, 6, 6), np.uint8)}, "6x5x1 but test images are 6x6x1"),
        ({"class_names": np.array([1, 2, 3, 4])}, "class_names"),
        ({"class_names": np.array(["a", "b"])}, "2 classes"),
    ],
)
def test_bad_npz_contents(tmp_path, overrides, fragment):
    user_error(lambda: load_dataset(write_npz(tmp_path / "bad.npz", **overrides)), "bad.npz", fragment)


def test_bad_idx_files(tmp_path):
    folder = write_idx(tmp_path / "badgz")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    user_error(lambda: load_dataset(folder), "t10k-labels-idx1-ubyte.gz", "gzip")

    folder = write_idx(tmp_path / "truncated")
    data = gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(data[:-10]))
    user_error(lambda: load_dataset(folder), "train-images-idx3-ubyte.gz", "header")

    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x08\x08\x08\x03" + data[4:]))
    user_error(lambda: load_dataset(folder), "train-images-idx3-ubyte.gz", "not an IDX file")

    folder = write_idx(tmp_path / "missing")
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    user_error(lambda: load_dataset(folder), "missing", "t10k-images-idx3-ubyte.gz")

    gz = gzip.compress(data)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gz[: len(gz) // 2])
    user_error(lambda: load_dataset(folder), "t10k-images-idx3-ubyte.gz")


def test_bad_image_folders(tmp_path, cache_dir):
    def load(root):
        return lambda: load_dataset(root, cache_dir=cache_dir)

    root = write_images(tmp_path / "undecodable")
    (root / "train" / "dog" / "01.png").write_bytes(b"\x89PNG broken")
    user_error(load(root), "01.png", "not a readable image")

    root = write_images(tmp_path / "sizes")
    Image.new("RGB", (9, 9)).save(root / "test" / "emu" / "03.png")
    user_error(load(root), "03.png", "9x9", "resize")

    root = write_images(tmp_path / "empty")
    for f in (root / "train" / "dog").iterdir():
        f.unlink()
    user_error(load(root), str(Path("train") / "dog"), "no .png")

    root = write_images(tmp_path / "differ")
    shutil.rmtree(root / "test" / "emu")
    (root / "test" / "yak").mkdir()
    Image.new("RGB", (5, 7)).save(root / "test" / "yak" / "0.png")
    user_error(load(root), "differ", "only in train: emu", "only in test: yak")

    root = write_images(tmp_path / "notest")
    shutil.rmtree(root / "test")
    user_error(load(root), "notest", "no test/ folder")

    root = write_images(tmp_path / "oneclass", classes=("solo",))
    user_error(load(root), "oneclass", "single class")


def test_bad_archives(tmp_path, cache_dir):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b\x08garbage")
    user_error(lambda: load_dataset(garbage, cache_dir=cache_dir), "garbage.tar.gz", "tar archive")
    good = make_tar(write_images(tmp_path / "pics"), tmp_path / "good.tar.gz").read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good[: len(good) // 2])
    user_error(lambda: load_dataset(truncated, cache_dir=cache_dir), "truncated.tar.gz")
    plain = tmp_path / "plain.tar"
    plain.write_bytes(b"\0" * 100 + b"nonsense" * 100)
    user_error(lambda: load_dataset(plain, cache_dir=cache_dir), "plain.tar")


def test_bad_cifar_batches_never_run_code(tmp_path, cache_dir):
    folder = write_cifar10(tmp_path / "cifar-10-batches-py")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    user_error(lambda: load_dataset(folder, cache_dir=cache_dir), "data_batch_2", "not allowed")
    assert not marker.exists()
    (folder / "data_batch_2").write_bytes(b"\x80\x02 truncated")
    user_error(lambda: load_dataset(folder, cache_dir=cache_dir), "data_batch_2")
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": np.zeros((3, 3072), np.uint8), b"labels": [0, 1]}))
    user_error(lambda: load_dataset(folder, cache_dir=cache_dir), "data_batch_2", "2 labels for 3 images")
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    user_error(lambda: load_dataset(folder, cache_dir=cache_dir), "data_batch_2", "3072")
    (folder / "test_batch").unlink()
    user_error(lambda: load_dataset(folder, cache_dir=cache_dir), "test_batch")


# --- named datasets and folders -----------------------------------------------------------------


def test_data_dirs_order(tmp_path, monkeypatch):
    home = Path.home()
    assert data_dirs() == [home / ".keras" / "datasets"]
    monkeypatch.setenv("AUTOCOMPRESS_DATA_DIR", f"{tmp_path / 'e1'}{os.pathsep}{tmp_path / 'e2'}")
    assert data_dirs(tmp_path / "d") == [tmp_path / "d", tmp_path / "e1", tmp_path / "e2", home / ".keras" / "datasets"]
    assert data_dirs(tmp_path / "e1") == [tmp_path / "e1", tmp_path / "e2", home / ".keras" / "datasets"]
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert data_dirs()[-1] == tmp_path / "kh" / "datasets"


def test_default_cache_dir(tmp_path, monkeypatch):
    assert default_cache_dir() == Path.home() / ".cache" / "autocompress"
    monkeypatch.setenv("AUTOCOMPRESS_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert default_cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_locate_known_names_in_order(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    monkeypatch.setenv("AUTOCOMPRESS_DATA_DIR", str(second))
    assert all(locate_dataset(name, first) is None for name in KNOWN_DATASETS)
    second.mkdir()
    write_npz(second / "cifar10.npz")
    assert locate_dataset("cifar10", first) == second / "cifar10.npz"
    write_images(first / "cifar10")
    assert locate_dataset("CIFAR10", first) == first / "cifar10"  # names are case-insensitive
    write_cifar10(second / "cifar-10-batches-py")
    assert locate_dataset("cifar10", first) == first / "cifar10"  # earlier dir wins
    (first / "fashion-mnist").mkdir()
    assert locate_dataset("fashion-mnist", first) is None  # an empty folder is not a copy
    write_idx(first)
    assert locate_dataset("fashion_mnist", first) == first
    assert locate_dataset("mnist", first) == first
    write_npz(second / "mnist-5k.npz")
    write_npz(second / "mnist.npz")
    assert locate_dataset("mnist", first) == first  # IDX directly in the first dir
    user_error(lambda: locate_dataset("imagenet"), "imagenet")
    user_error(lambda: locate_dataset("mnist", tmp_path / "absent"), "absent", "not a folder")


def test_named_load_uses_default_class_names(tmp_path, cache_dir):
    write_idx(tmp_path / "fashion_mnist")
    ds = load_dataset("fashion_mnist", data_dir=tmp_path)
    assert ds.name == "fashion_mnist" and ds.class_names[0] == "T-shirt/top" and ds.input_shape == (28, 28, 1)
    assert ds.source == str(tmp_path / "fashion_mnist")
    write_images(tmp_path / "cifar10", classes=("a", "b"))
    assert load_dataset("cifar10", data_dir=tmp_path, cache_dir=cache_dir).class_names == ("a", "b")
    write_npz(tmp_path / "mnist.npz")
    assert load_dataset("mnist", data_dir=tmp_path).class_names == tuple("0123456789")


def test_relative_path_found_in_data_dir(tmp_path):
    write_npz(tmp_path / "mine.npz")
    assert load_dataset("mine.npz", data_dir=tmp_path).name == "mine"


def test_missing_named_dataset_explains_where_it_looked(tmp_path, monkeypatch):
    def offline(name):
        raise OSError("URL fetch failure: no network\nsecond line")

    monkeypatch.setattr(registry, "_keras_load_data", offline)
    message = user_error(
        lambda: load_dataset("mnist", data_dir=tmp_path), "mnist was not found in", str(tmp_path),
        ".keras", "no network", "put mnist.npz in one of those folders or pass --data-dir",
    )
    assert "second line" not in message


def test_import_is_light():
    code = "import sys, autocompress.data; print('tensorflow' in sys.modules, 'PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# --- the shared real data -----------------------------------------------------------------------


@needs_shared
def test_shared_folder_is_located():
    assert locate_dataset("fashion_mnist", SHARED).resolve() == (SHARED / "fashion-mnist").resolve()
    assert locate_dataset("cifar10", SHARED).resolve() == (SHARED / "cifar10-images.tar.gz").resolve()
    assert locate_dataset("mnist", SHARED) is None  # mnist-5k.npz is a sample, not the named mnist


@needs_shared
def test_shared_fashion_mnist_by_name():
    ds = load_dataset("fashion_mnist", data_dir=SHARED)
    check_shapes(ds, 60000, 10000, (28, 28, 1), 10)
    assert np.bincount(ds.y_val).tolist() == [600] * 10 and ds.class_names[-1] == "Ankle boot"


@needs_shared
def test_shared_mnist_sample_by_path():
    ds = load_dataset(SHARED / "mnist-5k.npz")
    check_shapes(ds, 4000, 1000, (28, 28, 1), 10)
    assert ds.name == "mnist-5k" and ds.x_train.max() == 255


# --- tf.data pipeline ---------------------------------------------------------------------------


def test_make_tf_dataset_batches_unscaled_float_pixels():
    x, y = tiny_arrays(n_train=10)[:2]
    x = x[..., None]
    batches = list(make_tf_dataset(x, y, batch_size=4, shuffle=False))
    assert [tuple(b[0].shape) for b in batches] == [(4, 6, 5, 1), (4, 6, 5, 1), (2, 6, 5, 1)]
    assert batches[0][0].dtype.name == "float32" and batches[0][1].dtype.name == "int64"
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), x.astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y)


def test_make_tf_dataset_shuffle_is_seeded():
    x, y = tiny_arrays(n_train=64)[:2]

    def order(seed):  # pixel [0, 0] of each image is its index
        return np.concatenate([images.numpy()[:, 0, 0] for images, _ in make_tf_dataset(x, y, 16, True, seed)])

    assert np.array_equal(order(3), order(3))
    assert not np.array_equal(order(3), order(4))
    assert sorted(order(3).tolist()) == list(range(64))


def test_make_tf_dataset_extra_targets():
    x, y = tiny_arrays(n_train=6, classes=3)[:2]
    logits = np.arange(18, dtype=np.float64).reshape(6, 3)
    (_, target), = list(make_tf_dataset(x, y, 6, False, extra=logits, num_classes=5))
    assert target.dtype.name == "float32" and target.shape == (6, 8)
    np.testing.assert_array_equal(target.numpy()[:, :5], np.eye(5)[y])
    np.testing.assert_array_equal(target.numpy()[:, 5:], logits)
    with pytest.raises(ValueError):
        make_tf_dataset(x, y[:3], 2, False)
