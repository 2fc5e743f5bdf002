"""The Python API behind every CLI command: load data, get the teacher, compress one configuration."""

from __future__ import annotations

from pathlib import Path

from autocompress.cache import sweep_temporaries
from autocompress.compress import pipeline
from autocompress.compress.config import CompressionConfig, Result
from autocompress.compress.npu import check_accelerator
from autocompress.precision import resolve as resolve_precision
from autocompress.data import KNOWN_DATASETS, Dataset, default_cache_dir, load_dataset, locate_dataset
from autocompress.own_model import InputScaling, OwnModel, prepare
from autocompress.teacher import Teacher, default_recipe, load_user_teacher, own_model_teacher, train_or_load


def list_datasets(data_dir: str | Path | None = None) -> dict[str, Path | None]:
    """Each known dataset and the local path it would be read from (None: downloaded by keras.datasets)."""
    return {name: locate_dataset(name, data_dir) for name in KNOWN_DATASETS}


def get_teacher(dataset: Dataset, cache_dir: str | Path | None = None, *, epochs: int | None = None, seed: int = 0,
                teacher_path: str | Path | None = None, callbacks=(), precision: str = "auto",
                custom_objects: dict | None = None, safe_mode: bool = True, own_model: OwnModel | None = None) -> Teacher:
    """The user's teacher (``teacher_path``: a Keras 3 or tf_keras file, opened with
    ``custom_objects`` and ``safe_mode`` as Keras does), else the user's own model (``own_model``,
    from :func:`autocompress.own_model.prepare`), else the built-in one: trained once (in
    ``precision``: ``auto``, ``float32`` or ``bfloat16``), then loaded from the cache. Either way
    later calls, and ``--teacher`` with the same file, read the cached logits."""
    cache = default_cache_dir(cache_dir)
    if teacher_path is not None:
        return load_user_teacher(dataset, teacher_path, cache, custom_objects=custom_objects, safe_mode=safe_mode)
    if own_model is not None:
        return own_model_teacher(dataset, own_model, cache)
    recipe = default_recipe(dataset, epochs, seed, precision)
    return train_or_load(dataset, recipe, cache, callbacks=callbacks)


def make_context(dataset: Dataset, cache_dir: str | Path | None = None, *, teacher_epochs: int | None = None,
                 teacher_path: str | Path | None = None, precision: str = "auto", npu: str | None = None,
                 model_path: str | Path | None = None, scaling: InputScaling = InputScaling()) -> pipeline.Context:
    """A pipeline context whose teacher is trained or loaded only when a configuration distils;
    ``npu``: the Ethos-U configuration Vela estimates each file for. ``model_path``: the user's
    trained model (student ``"model"``, fed ``pixels * scaling.scale + scaling.offset``), which
    is also the teacher unless ``teacher_path`` names another."""
    cache = default_cache_dir(cache_dir)
    sweep_temporaries(cache)  # what a killed run was writing
    resolve_precision(precision)  # a bad choice fails here, before any work
    own = prepare(dataset, model_path, cache, scaling) if model_path is not None else None
    return pipeline.Context(dataset, cache, lambda callbacks: get_teacher(
                                dataset, cache, epochs=teacher_epochs, teacher_path=teacher_path,
                                precision=precision, own_model=own, callbacks=callbacks),
                            precision=precision, npu=npu and check_accelerator(npu), own_model=own)


def compress(config: CompressionConfig, dataset: str | Dataset, out_dir: str | Path, *,
             data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
             teacher_epochs: int | None = None, teacher_path: str | Path | None = None,
             precision: str = "auto", npu: str | None = None, model_path: str | Path | None = None,
             scaling: InputScaling = InputScaling()) -> Result:
    """Distil, prune and quantize ``dataset``'s student as ``config`` says; measure the written ``.tflite``
    (and, with ``npu``, e.g. ``"ethos-u55-128"``, estimate it on that Arm Ethos-U NPU with Vela).
    Student ``"model"`` is the user's own trained model ``model_path`` (see :func:`make_context`).

    >>> from autocompress import CompressionConfig, compress                      # doctest: +SKIP
    >>> result = compress(CompressionConfig(width=0.5, quant="int8"), "fashion_mnist", "out/")  # doctest: +SKIP
    >>> result.tflite_bytes, result.test_accuracy                                 # doctest: +SKIP
    """
    if not isinstance(dataset, Dataset):
        dataset = load_dataset(dataset, data_dir, cache_dir)
    context = make_context(dataset, cache_dir, teacher_epochs=teacher_epochs, teacher_path=teacher_path,
                           precision=precision, npu=npu, model_path=model_path, scaling=scaling)
    return pipeline.run(config, context, Path(out_dir))
