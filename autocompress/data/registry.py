"""The named datasets: their class names, where local copies are looked for, and the Keras download."""

from __future__ import annotations

import os
from pathlib import Path

from autocompress.data._errors import reason
from autocompress.data.formats import Arrays, has_idx_files
from autocompress.errors import UserError

KNOWN_DATASETS: tuple[str, ...] = ("mnist", "fashion_mnist", "cifar10", "cifar100")

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion_mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "cifar100": tuple(
        "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel "
        "can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur "
        "dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion "
        "lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree "
        "pear pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea "
        "seal shark shrew skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table "
        "tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman "
        "worm".split()
    ),
}

# Local forms looked for in each data dir, in order: (name inside the dir, kind), where kind is
# "file", "dir", or "idx" (a folder directly holding the IDX files; "." is the data dir itself).
_LOCAL_FORMS: dict[str, tuple[tuple[str, str], ...]] = {
    "mnist": (("mnist.npz", "file"), ("mnist", "idx"), (".", "idx")),
    "fashion_mnist": (("fashion-mnist", "idx"), ("fashion_mnist", "idx"), (".", "idx")),
    "cifar10": (
        ("cifar-10-batches-py", "dir"), ("cifar-10-python.tar.gz", "file"), ("cifar10", "dir"),
        ("cifar10-images.tar.gz", "file"), ("cifar10.npz", "file"),
    ),
    "cifar100": (
        ("cifar-100-python", "dir"), ("cifar-100-python.tar.gz", "file"), ("cifar100", "dir"),
        ("cifar100-images.tar.gz", "file"), ("cifar100.npz", "file"),
    ),
}

_WHAT_TO_PUT = {
    "mnist": "mnist.npz",
    "fashion_mnist": "the four Fashion-MNIST IDX .gz files (in a fashion-mnist/ folder)",
    "cifar10": "cifar-10-python.tar.gz",
    "cifar100": "cifar-100-python.tar.gz",
}


def canonical_name(dataset: str) -> str | None:
    """The known dataset ``dataset`` names ("Fashion-MNIST" -> "fashion_mnist"), or None."""
    name = dataset.strip().lower().replace("-", "_")
    return name if name in KNOWN_DATASETS else None


def data_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Folders searched for local copies, in order: ``data_dir``, ``$AUTOCOMPRESS_DATA_DIR``
    (may list several, separated by ``os.pathsep``), then Keras' own download folder
    (``$KERAS_HOME/datasets``, by default ``~/.keras/datasets``)."""
    env = [d for d in os.environ.get("AUTOCOMPRESS_DATA_DIR", "").split(os.pathsep) if d]
    keras_home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    dirs = [*([data_dir] if data_dir else []), *env, Path(keras_home) / "datasets"]
    unique: list[Path] = []
    for d in (Path(d).expanduser() for d in dirs):
        if d not in unique:
            unique.append(d)
    return unique


def locate_dataset(name: str, data_dir: str | Path | None = None) -> Path | None:
    """Where the known dataset ``name`` would be read from; None if it would be downloaded."""
    known = canonical_name(name)
    if known is None:
        raise UserError(f"unknown dataset {name!r}; use one of {', '.join(KNOWN_DATASETS)}")
    if data_dir and not Path(data_dir).expanduser().is_dir():
        raise UserError(f"data dir {data_dir} is not a folder; pass an existing folder")
    for folder in data_dirs(data_dir):
        for rel, kind in _LOCAL_FORMS[known]:
            if _present(folder / rel, kind):
                return (folder / rel).resolve()
    return None


def _present(path: Path, kind: str) -> bool:
    if kind == "idx":
        return has_idx_files(path)
    return path.is_dir() if kind == "dir" else path.is_file()


def download(name: str, data_dir: str | Path | None = None) -> Arrays:
    """Fetch the known dataset ``name`` with ``keras.datasets``; a failure names the folders searched."""
    try:
        (x_train, y_train), (x_test, y_test) = _keras_load_data(name)
    except Exception as e:  # any failure to fetch is reported the same way
        searched = ", ".join(str(d) for d in data_dirs(data_dir))
        raise UserError(
            f"{name} was not found in {searched} and could not be downloaded ({reason(e, 120)}); "
            f"put {_WHAT_TO_PUT[name]} in one of those folders or pass --data-dir"
        ) from e
    return Arrays(x_train, y_train, x_test, y_test, CLASS_NAMES[name])


def _keras_load_data(name: str):
    """``keras.datasets.<name>.load_data()``: ((x_train, y_train), (x_test, y_test))."""
    from autocompress._tf import keras

    loader = getattr(keras.datasets, name).load_data
    return loader(label_mode="fine") if name == "cifar100" else loader()
