"""Open a user's saved Keras model, whichever Keras wrote it, without running code from the file.

Keras 3 (``import keras``, TensorFlow 2.16+'s default) and tf_keras (the Keras 2 that TFMOT
needs) write different files, and both libraries live in one process, so each file is opened
by the library that wrote it: a ``.keras`` file by its ``metadata.json``, an ``.h5`` file by its
``keras_version`` attribute, a SavedModel folder by tf_keras. Lambda layers are refused before
anything is deserialised (tf_keras would run an ``.h5`` or SavedModel Lambda's stored bytecode)
unless the caller turns ``safe_mode`` off; classes neither library knows need ``custom_objects``.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from autocompress._tf import keras as tf_keras
from autocompress.errors import UserError

FORMATS = "a .keras or .h5 file or a SavedModel folder"
_LAMBDA = re.compile(r'"class_name":\s*"Lambda"')
_UNKNOWN_CLASS = re.compile(r"Could not locate class '(\w+)'|Unknown layer: '(\w+)'")


def load_user_model(path: str | Path, what: str = "model", *, custom_objects: dict | None = None,
                    safe_mode: bool = True):
    """The Keras model saved at ``path`` (a Keras 3 or a tf_keras model), uncompiled.

    Every problem is a :class:`UserError` naming ``what`` (``"teacher"``, ``"model"``) and the file.
    """
    source = Path(path)
    if not source.exists():
        raise UserError(f"{what} file {source} does not exist; pass a saved Keras model ({FORMATS})")
    writer, config = _writer_and_config(source, what)
    if safe_mode and _LAMBDA.search(config):
        raise UserError(f"{what} {source} has a Lambda layer, whose stored Python code would run on loading; "
                        "replace it with built-in layers, or if you trust the file pass safe_mode=False to get_teacher in Python")
    try:
        if writer == 3:
            import keras as keras3  # Keras 3, beside tf_keras: only when a file needs it

            return keras3.saving.load_model(source, compile=False, custom_objects=custom_objects, safe_mode=safe_mode)
        return tf_keras.models.load_model(source, compile=False, custom_objects=custom_objects, safe_mode=safe_mode)
    except Exception as error:  # any load failure is a bad file from the user's point of view
        unknown = _UNKNOWN_CLASS.search(str(error))
        if unknown:
            name = unknown.group(1) or unknown.group(2)
            raise UserError(f"{what} {source} uses the class {name}, which Keras does not know; pass it in Python "
                            f"as custom_objects={{'{name}': {name}}}") from None
        raise UserError(f"cannot load {what} {source} as a Keras model ({type(error).__name__}); "
                        f"save it with model.save('{what}.keras')") from None


def _writer_and_config(source: Path, what: str) -> tuple[int, str]:
    """Which Keras major version wrote ``source`` and the model's config as text (what loading would build)."""
    bad = UserError(f"cannot load {what} {source} as a Keras model (not {FORMATS}); "
                    f"save it with model.save('{what}.keras')")
    if source.is_dir():
        metadata = source / "keras_metadata.pb"
        if not metadata.exists():
            raise UserError(f"{what} {source} is a SavedModel without Keras metadata (model.export() writes those); "
                            f"pass the file the model was saved to with model.save('{what}.keras')")
        return 2, metadata.read_bytes().decode("utf-8", "replace")
    try:
        if zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                version = json.loads(archive.read("metadata.json"))["keras_version"]
                return int(version.split(".")[0]), archive.read("config.json").decode()
        import h5py

        with h5py.File(source, "r") as h5:
            version, config = h5.attrs["keras_version"], h5.attrs["model_config"]
        return int(_text(version).split(".")[0]), _text(config)
    except (OSError, KeyError, ValueError):
        raise bad from None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
