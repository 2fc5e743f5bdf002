"""Train-or-load the cached teacher (and teacher assistant) and their logits.

A teacher is trained once per (dataset, architecture, width, budget, seed) and stored in
``<cache>/teachers/<key>/`` with its validation and test accuracy and its logits on the
train split (plain and horizontally flipped) and the validation split. Later calls load
those in seconds. A user's own model (``teacher_path``: Keras 3 or tf_keras, see
:mod:`autocompress.user_model`) is validated and its logits cached the same way, keyed by
the file's content.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from autocompress import __version__
from autocompress._tf import keras
from autocompress.cache import atomic_directory, content_hash, exclusive, text_hash
from autocompress.data import Dataset
from autocompress.errors import UserError
from autocompress.models import build_model
from autocompress.precision import as_float32, for_model, policy
from autocompress.strong_teacher import REVISION as AIRBENCH_REVISION
from autocompress.strong_teacher import build_airbench, decay_for, train_airbench
from autocompress.training import TrainingConfig, keras_accuracy, predict_logits, train
from autocompress.user_model import load_user_model

FLIPPABLE = ("fashion_mnist", "cifar10", "cifar100")
STRONG_TEACHER_MIN_IMAGES = 10_000  # below that, batches of 1024 leave too few steps per epoch


@dataclass(frozen=True)
class TeacherRecipe:
    """What the built-in teacher (or an assistant) is and how it is trained (``precision``: ``auto``,
    ``float32`` or ``bfloat16``, see :mod:`autocompress.precision`; :func:`train_or_load` settles ``auto``)."""

    architecture: str
    width: float
    training: TrainingConfig
    precision: str = "float32"

    def key(self, dataset: Dataset, parent: str = "") -> str:
        spec = {"dataset": dataset.fingerprint, "recipe": asdict(self), "parent": parent, "version": __version__}
        if self.architecture == "airbench":
            spec["airbench_revision"] = AIRBENCH_REVISION
        return text_hash(json.dumps(spec, sort_keys=True))


@dataclass(frozen=True, eq=False)
class Teacher:
    """A trained model's cached logits and accuracy, as distillation reads them."""

    name: str
    params: int
    val_accuracy: float
    test_accuracy: float
    train_seconds: float
    logits_train: np.ndarray = field(repr=False)
    logits_train_flipped: np.ndarray = field(repr=False)
    logits_val: np.ndarray = field(repr=False)
    key: str
    path: Path


def augmentations(dataset: Dataset) -> tuple[str, ...]:
    """Horizontal flips are label-preserving for clothes and objects, not for digits or unknown data."""
    return ("flip",) if dataset.name in FLIPPABLE else ()


def default_recipe(dataset: Dataset, epochs: int | None = None, seed: int = 0,
                   precision: str = "float32") -> TeacherRecipe:
    """The built-in teacher: a VGG-style CNN for grey images; for colour images the airbench-style
    net of :mod:`autocompress.strong_teacher` (12 epochs, batch 1024) when there are at least
    ``STRONG_TEACHER_MIN_IMAGES`` training images, else a 2x-wide ResNet-8."""
    if dataset.input_shape[-1] == 3 and len(dataset.x_train) >= STRONG_TEACHER_MIN_IMAGES:
        training = TrainingConfig(epochs=epochs or 12, batch_size=1024, augment=augmentations(dataset), seed=seed)
        return TeacherRecipe("airbench", 1.0, training, precision)
    grey = dataset.input_shape[-1] == 1
    architecture, width, default_epochs = ("cnn", 1.0, 10) if grey else ("resnet8", 2.0, 30)
    batch_size = min(128, max(16, len(dataset.x_train) // 50))  # small data: still ~50 steps per epoch
    training = TrainingConfig(epochs=epochs or default_epochs, batch_size=batch_size,
                              augment=augmentations(dataset) + ("translate",), seed=seed)
    return TeacherRecipe(architecture, width, training, precision)


def _load(path: Path) -> Teacher:
    info = json.loads((path / "teacher.json").read_text())
    logits = np.load(path / "logits.npz")
    return Teacher(logits_train=logits["train"], logits_train_flipped=logits["train_flipped"],
                   logits_val=logits["val"], path=path, **info)


def _store(path: Path, model: keras.Model, dataset: Dataset, name: str, key: str, seconds: float) -> Teacher:
    """Measure ``model`` (tf_keras or Keras 3), compute its logits and write everything to ``path`` atomically.

    A model whose outputs are probabilities (it ends in a softmax) gives log-probabilities as logits.
    """
    outputs = {
        "train": predict_logits(model, dataset.x_train),
        "train_flipped": predict_logits(model, dataset.x_train, flip=True),
        "val": predict_logits(model, dataset.x_val),
    }
    val = outputs["val"]
    probabilities = bool(np.all(val >= 0) and np.allclose(val.sum(axis=1), 1.0, atol=1e-3))
    logits = {split: np.log(np.clip(out, 1e-12, None)) if probabilities else out for split, out in outputs.items()}
    info = {
        "name": name,
        "key": key,
        "params": int(model.count_params()),
        "val_accuracy": float(np.mean(np.argmax(logits["val"], axis=1) == dataset.y_val)),
        "test_accuracy": keras_accuracy(model, dataset.x_test, dataset.y_test),
        "train_seconds": round(seconds, 1),
    }
    with atomic_directory(path) as tmp:
        model.save(tmp / "model.keras")
        np.savez(tmp / "logits.npz", **logits)
        (tmp / "teacher.json").write_text(json.dumps(info, indent=2))
    return _load(path)


def train_or_load(dataset: Dataset, recipe: TeacherRecipe, cache_dir: Path, *, parent: Teacher | None = None,
                  temperature: float = 4.0, alpha: float = 0.5, callbacks=()) -> Teacher:
    """Return the cached model for ``recipe``, training it first if needed.

    With ``parent`` the model is distilled from the parent's cached logits (an assistant).
    """
    recipe = replace(recipe, precision=for_model(recipe.precision, lambda: _build(dataset, recipe),
                                                 f"{recipe.architecture} x{recipe.width:g} on {dataset.input_shape}",
                                                 recipe.training.batch_size, cache_dir))
    key = recipe.key(dataset, parent.key if parent else "")
    kind = "assistants" if parent else "teachers"
    path = Path(cache_dir) / kind / f"{dataset.name}-{recipe.architecture}-{key}"
    if (path / "teacher.json").exists():
        return _load(path)
    with exclusive(path):  # another process training it: wait, then load its teacher
        if (path / "teacher.json").exists():
            return _load(path)
        return _train(dataset, recipe, path, key, parent, temperature, alpha, callbacks)


def _build(dataset: Dataset, recipe: TeacherRecipe) -> keras.Model:
    """``recipe``'s untrained model, under the current precision policy."""
    if recipe.architecture == "airbench":
        return build_airbench(dataset.input_shape, dataset.num_classes, recipe.width,
                              decay=decay_for(recipe.training.batch_size))
    return build_model(recipe.architecture, dataset.input_shape, dataset.num_classes, width=recipe.width)


def _train(dataset: Dataset, recipe: TeacherRecipe, path: Path, key: str, parent: Teacher | None,
           temperature: float, alpha: float, callbacks) -> Teacher:
    keras.utils.set_random_seed(recipe.training.seed)
    started = time.perf_counter()
    kd = {}
    if parent is not None:
        kd = dict(teacher_logits=parent.logits_train, teacher_logits_flipped=parent.logits_train_flipped,
                  temperature=temperature, alpha=alpha)
    with policy(recipe.precision):
        model = _build(dataset, recipe)
        if recipe.architecture == "airbench":
            train_airbench(model, dataset.x_train, dataset.y_train, dataset.num_classes, recipe.training.epochs,
                           recipe.training.batch_size, recipe.training.seed, "flip" in recipe.training.augment,
                           callbacks=callbacks)
        else:
            train(model, dataset.x_train, dataset.y_train, dataset.num_classes, recipe.training,
                  callbacks=callbacks, **kd)
    name = f"{recipe.architecture} x{recipe.width:g}"
    return _store(path, as_float32(model), dataset, name, key, time.perf_counter() - started)


def load_user_teacher(dataset: Dataset, teacher_path: str | Path, cache_dir: Path, *,
                      custom_objects: dict | None = None, safe_mode: bool = True) -> Teacher:
    """Validate a user's saved Keras model against ``dataset`` and cache its logits.

    Any file :func:`~autocompress.user_model.load_user_model` opens (Keras 3 or tf_keras; its
    ``custom_objects`` and ``safe_mode``). The model must take raw pixels (0-255) of the dataset's
    shape and output one score per class: logits or probabilities.
    """
    source = Path(teacher_path)
    key = content_hash(source) if source.exists() else ""
    path = Path(cache_dir) / "teachers" / f"{dataset.name}-user-{key}"
    if key and (path / "teacher.json").exists():
        return _load(path)
    model = load_user_model(source, "teacher", custom_objects=custom_objects, safe_mode=safe_mode)
    expected = (None, *dataset.input_shape)
    if tuple(model.input_shape) != expected:
        raise UserError(f"teacher {source} takes inputs of shape {tuple(model.input_shape)} but {dataset.name} "
                        f"images are {expected}; pass a teacher trained on this dataset")
    if model.output_shape[-1] != dataset.num_classes:
        raise UserError(f"teacher {source} outputs {model.output_shape[-1]} classes but {dataset.name} has "
                        f"{dataset.num_classes}; pass a teacher trained on this dataset")
    return _store(path, model, dataset, f"user:{source.name}", key, 0.0)


def own_model_teacher(dataset: Dataset, own, cache_dir: Path) -> Teacher:
    """The user's own model (an :class:`~autocompress.own_model.OwnModel`, raw pixels in) as the
    teacher its compressed variants distil from, its logits cached by its key."""
    path = Path(cache_dir) / "teachers" / f"{dataset.name}-user-{own.key}"
    if (path / "teacher.json").exists():
        return _load(path)
    return _store(path, own.load(), dataset, f"user:{Path(own.source).name}", own.key, 0.0)
