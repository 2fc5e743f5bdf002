"""Property tests: whatever bytes or arrays a user hands over, loading ends in a Dataset or a UserError."""

from __future__ import annotations

import gzip
import io
import tempfile
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from autocompress.data import load_dataset
from autocompress.data.splits import split_indices
from autocompress.errors import UserError
from data_files import IDX_FILES, make_tar, write_cifar10, write_idx, write_images, write_npz

SETTINGS = settings(max_examples=50, deadline=None, database=None)


def load_or_user_error(path: Path, cache_dir: Path):
    """Load ``path``; a UserError is fine, any other exception fails the test. Checks what loads."""
    try:
        ds = load_dataset(path, cache_dir=cache_dir, data_dir=cache_dir)
    except UserError as e:
        assert "\n" not in str(e) and str(e)
        return None
    assert ds.x_train.dtype == ds.x_val.dtype == ds.x_test.dtype == np.uint8
    assert ds.x_train.ndim == 4 and ds.x_train.shape[1:] == ds.x_val.shape[1:] == ds.x_test.shape[1:]
    assert 1 <= ds.x_train.shape[3] <= 4 and ds.num_classes >= 2
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert y.dtype == np.int64 and (y >= 0).all() and (y < ds.num_classes).all()
    return ds


@SETTINGS
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".npz", ".tar.gz", ".tgz", ".tar"]))
def test_random_bytes_as_a_file(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "random" + suffix)
        path.write_bytes(data)
        assert load_or_user_error(path, Path(tmp, "cache")) is None


@SETTINGS
@given(data=st.binary(max_size=400), which=st.sampled_from(IDX_FILES), compress=st.booleans())
def test_random_bytes_as_one_idx_file(data, which, compress):
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_idx(Path(tmp, "idx"))
        (folder / f"{which}.gz").write_bytes(gzip.compress(data) if compress else data)
        load_or_user_error(folder, Path(tmp, "cache"))


@SETTINGS
@given(data=st.binary(max_size=400), header=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]))
def test_random_bytes_as_an_image(data, header):
    with tempfile.TemporaryDirectory() as tmp:
        root = write_images(Path(tmp, "pics"), per_class=1)
        (root / "train" / "dog" / "00.png").write_bytes(header + data)
        load_or_user_error(root, Path(tmp, "cache"))


@SETTINGS
@given(data=st.binary(max_size=400), header=st.sampled_from([b"", b"\x80\x02}q\x00"]))
def test_random_bytes_as_a_cifar_batch(data, header):
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_cifar10(Path(tmp, "cifar-10-batches-py"), per_batch=2)
        (folder / "data_batch_1").write_bytes(header + data)
        load_or_user_error(folder, Path(tmp, "cache"))


def _valid_files(tmp: Path) -> list[Path]:
    images = write_images(tmp / "pics", per_class=2)
    idx = write_idx(tmp / "idx") / "t10k-images-idx3-ubyte.gz"
    return [write_npz(tmp / "d.npz"), make_tar(images, tmp / "pics.tar.gz"), idx]


@SETTINGS
@given(which=st.integers(0, 2), cut=st.floats(0, 1, exclude_max=True))
def test_truncated_files_raise_user_error(which, cut):
    with tempfile.TemporaryDirectory() as tmp:
        path = _valid_files(Path(tmp))[which]
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
        source = path.parent if path.parent.name == "idx" else path
        assert load_or_user_error(source, Path(tmp, "cache")) is None


pixel_dtypes = st.sampled_from([np.uint8, np.int16, np.int64, np.uint16, np.float32, np.float64, np.bool_])
label_dtypes = st.sampled_from([np.int64, np.uint8, np.int8, np.float32, np.uint64])


@st.composite
def npz_contents(draw):
    """Arrays that are often valid (pixels 0..255, labels 0..5) and often wrong in shape, dtype or range."""
    image = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=4)))

    def pixels(n):
        dims = image if draw(st.booleans()) else draw(hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
        dtype = draw(pixel_dtypes)
        valid = st.booleans() if dtype is np.bool_ else st.integers(0, 255)
        return draw(hnp.arrays(dtype, (n, *dims), elements=valid if draw(st.booleans()) else None))

    def labels(n):
        length = max(0, n + draw(st.sampled_from([0, 0, 0, 1, -1])))
        extra = () if draw(st.integers(0, 4)) else draw(hnp.array_shapes(min_dims=1, max_dims=1, max_side=3))
        valid = st.integers(0, 5) if draw(st.booleans()) else None
        return draw(hnp.arrays(draw(label_dtypes), (length, *extra), elements=valid))

    n_train, n_test = draw(st.integers(0, 12)), draw(st.integers(0, 6))
    return {"x_train": pixels(n_train), "y_train": labels(n_train), "x_test": pixels(n_test), "y_test": labels(n_test)}


@SETTINGS
@given(arrays=npz_contents())
def test_random_npz_contents(arrays):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "arrays.npz")
        np.savez(path, **arrays)
        load_or_user_error(path, Path(tmp, "cache"))


@SETTINGS
@given(
    labels=st.lists(st.integers(0, 5), min_size=2, max_size=200),
    fraction=st.floats(0.01, 0.5),
    seed=st.integers(0, 2**32),
)
def test_split_partitions_each_class_in_proportion(labels, fraction, seed):
    y = np.array(labels)
    train, val = split_indices(y, fraction, seed)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(y)))
    assert len(val) == min(max(1, round(len(y) * fraction)), len(y) - 1)
    expected = np.bincount(y) * len(val) / len(y)
    got = np.bincount(y[val], minlength=len(expected))
    assert (np.abs(got - expected) < 1).all()
    again_train, again_val = split_indices(y, fraction, seed)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)


def test_images_of_every_pillow_mode_load(tmp_path):
    """Palette, bilevel, 16-bit, LA and CMYK images become L / LA / RGB / RGBA arrays."""
    for mode, fmt in [("P", "PNG"), ("1", "PNG"), ("I;16", "PNG"), ("LA", "PNG"), ("CMYK", "JPEG")]:
        root = write_images(tmp_path / mode.replace(";", ""), mode="L", per_class=1)
        buffer = io.BytesIO()
        Image.new(mode, (5, 7)).save(buffer, fmt)
        (root / "test" / "cat" / "00.png").write_bytes(buffer.getvalue())
        assert load_or_user_error(root, tmp_path / "cache") is not None
