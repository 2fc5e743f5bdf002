"""Your own teacher: a Keras 3 or tf_keras model, saved the way each library saves, distilled from."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from helpers import assert_user_error, run_cli


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _fit(library, dataset, softmax: bool):
    """A small CNN of ``library`` (Keras 3 or tf_keras), seeded, trained 5 epochs on raw pixels."""
    library.utils.set_random_seed(0)
    layers = library.layers
    model = library.Sequential([
        library.Input(dataset.input_shape), layers.Rescaling(1 / 255), layers.Conv2D(8, 3, activation="relu"),
        layers.MaxPooling2D(), layers.Flatten(),
        layers.Dense(dataset.num_classes, activation="softmax" if softmax else None),
    ])
    model.compile(library.optimizers.Adam(0.01), library.losses.SparseCategoricalCrossentropy(from_logits=not softmax))
    model.fit(dataset.x_train.astype("float32"), dataset.y_train, epochs=5, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def keras3_teacher(bar_dataset, tmp_path_factory):
    """A Keras 3 (``import keras``) classifier ending in a softmax, saved as .keras."""
    import keras

    model = _fit(keras, bar_dataset, softmax=True)
    path = tmp_path_factory.mktemp("keras3") / "teacher.keras"
    model.save(path)
    return model, path


def test_a_teacher_from_either_keras_in_each_format_gives_the_models_own_predictions(bar_dataset, keras3_teacher,
                                                                                      tmp_path):
    import keras
    import tf_keras

    from autocompress.teacher import load_user_teacher

    keras3_model, keras3_file = keras3_teacher
    keras3_model.save(tmp_path / "keras3.h5")
    tf_keras_model = _fit(tf_keras, bar_dataset, softmax=False)  # logits out
    for name in ("tf_keras.keras", "tf_keras.h5", "tf_keras_savedmodel"):
        tf_keras_model.save(tmp_path / name)
    files = {keras3_file: keras3_model, tmp_path / "keras3.h5": keras3_model}
    files |= {tmp_path / name: tf_keras_model for name in ("tf_keras.keras", "tf_keras.h5", "tf_keras_savedmodel")}
    assert isinstance(keras3_model, keras.Model) and not isinstance(keras3_model, tf_keras.Model)
    x_val, flipped = bar_dataset.x_val.astype("float32"), bar_dataset.x_train[:, :, ::-1].astype("float32")
    for path, model in files.items():
        teacher = load_user_teacher(bar_dataset, path, tmp_path / "cache")
        as_probabilities = (lambda out: out) if model is keras3_model else _softmax
        expected = model.predict(x_val, verbose=0)
        np.testing.assert_allclose(_softmax(teacher.logits_val), as_probabilities(expected), atol=1e-4,
                                   err_msg=str(path))
        np.testing.assert_allclose(_softmax(teacher.logits_train_flipped[:50]),
                                   as_probabilities(model.predict(flipped[:50], verbose=0)), atol=1e-4)
        assert teacher.val_accuracy == pytest.approx(np.mean(expected.argmax(axis=1) == bar_dataset.y_val))
        assert teacher.val_accuracy > 0.5 and teacher.name == f"user:{path.name}"


def test_compress_distils_from_a_keras3_teacher_file(bar_npz, keras3_teacher, tmp_path):
    _, teacher_file = keras3_teacher
    out = tmp_path / "out"
    run_cli("compress", "--dataset", bar_npz, "--teacher", teacher_file, "--student", "cnn", "--width", 0.5,
            "--alpha", 0.5, "--epochs", 10, "--quant", "int8", "--out", out, "--cache-dir", tmp_path / "cache",
            check=True)
    result = json.loads((out / "result.json").read_text())
    assert result["teacher"] == "user:teacher.keras" and (out / "model.tflite").stat().st_size == result["tflite_bytes"]
    assert result["test_accuracy"] > 0.9  # it learnt from the teacher (3 epochs left it at 33-65%, or collapsed)
    (teacher_dir,) = (tmp_path / "cache" / "teachers").iterdir()
    assert "-user-" in teacher_dir.name


def test_a_lambda_layer_is_refused_before_its_code_can_run(bar_dataset, bar_npz, tmp_path):
    import keras
    import tf_keras

    from autocompress.errors import UserError
    from autocompress.teacher import load_user_teacher

    marker = tmp_path / "code-ran"
    touch = eval(f"lambda t: (open({str(marker)!r}, 'w').close(), t)[1]")  # noqa: S307 - the file's payload
    files = []
    for library, name in ((tf_keras, "tf_keras.h5"), (tf_keras, "tf_keras.keras"), (keras, "keras3.keras")):
        model = library.Sequential([library.Input(bar_dataset.input_shape), library.layers.Lambda(touch),
                                    library.layers.Flatten(), library.layers.Dense(bar_dataset.num_classes)])
        model.save(tmp_path / name)
        files.append(tmp_path / name)
    marker.unlink()
    tf_keras.models.load_model(files[0], compile=False)  # what plain loading of such an .h5 file does
    assert marker.exists()
    marker.unlink()
    for path in files:
        with pytest.raises(UserError, match="Lambda layer"):
            load_user_teacher(bar_dataset, path, tmp_path / "cache")
    assert not marker.exists()
    trusted = load_user_teacher(bar_dataset, files[2], tmp_path / "cache", safe_mode=False)  # the user's choice
    assert trusted.name == "user:keras3.keras" and marker.exists()
    assert load_user_teacher(bar_dataset, files[2], tmp_path / "cache").key == trusted.key  # cached: not reopened
    assert_user_error(run_cli("teacher", "--dataset", bar_npz, "--teacher", files[0]), "Lambda layer")


def test_an_exported_savedmodel_without_keras_metadata_gets_one_line(bar_dataset, keras3_teacher, tmp_path):
    from autocompress.errors import UserError
    from autocompress.teacher import load_user_teacher

    model, _ = keras3_teacher
    model.export(tmp_path / "exported", verbose=False)
    with pytest.raises(UserError, match="without Keras metadata"):
        load_user_teacher(bar_dataset, tmp_path / "exported", tmp_path / "cache")


def test_a_custom_layer_needs_custom_objects_and_loads_with_them(bar_dataset, tmp_path):
    import keras

    from autocompress.api import get_teacher
    from autocompress.errors import UserError

    class Brighten(keras.layers.Layer):  # a user's own layer class, not registered with Keras
        def call(self, x):
            return x * 1.5

    layers = keras.layers
    model = keras.Sequential([keras.Input(bar_dataset.input_shape), Brighten(), layers.Rescaling(1 / 255),
                              layers.Conv2D(8, 3, activation="relu"), layers.GlobalAveragePooling2D(),
                              layers.Dense(bar_dataset.num_classes)])
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(bar_dataset.x_train.astype("float32"), bar_dataset.y_train, epochs=3, batch_size=32, verbose=0)
    path = tmp_path / "custom.keras"
    model.save(path)
    with pytest.raises(UserError, match=re.escape("uses the class Brighten, which Keras does not know; pass it in "
                                                  "Python as custom_objects={'Brighten': Brighten}")):
        get_teacher(bar_dataset, tmp_path / "cache", teacher_path=path)
    teacher = get_teacher(bar_dataset, tmp_path / "cache", teacher_path=path, custom_objects={"Brighten": Brighten})
    np.testing.assert_allclose(teacher.logits_val, model.predict(bar_dataset.x_val.astype("float32"), verbose=0),
                               rtol=1e-4, atol=1e-4)
