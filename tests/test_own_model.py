"""Your own model compressed: real Keras 3 models trained here, saved in each format, rebuilt in
tf_keras, channel-pruned from their weights, distilled from themselves, exported and re-measured."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from autocompress._tf import keras as tf_keras
from autocompress.compress import prune
from autocompress.compress.config import CompressionConfig
from autocompress.errors import UserError
from autocompress.own_model import InputScaling, build_student, prepare, to_tf_keras

from helpers import open_study, run_cli, search_command, tflite_docs_accuracy

keras3 = pytest.importorskip("keras")
L = keras3.layers


def _fit(model, dataset, scale: float = 1.0, epochs: int = 6):
    model.compile(keras3.optimizers.Adam(3e-3), keras3.losses.SparseCategoricalCrossentropy(), metrics=["accuracy"])
    keras3.utils.set_random_seed(0)
    model.fit(dataset.x_train.astype("float32") * scale, dataset.y_train, epochs=epochs, batch_size=32, verbose=0)
    return model


def _tutorial_cnn(shape, classes: int = 3, rescale: bool = True):
    """The Sequential CNN of the Keras tutorials: Rescaling, two convs, a dense head, softmax."""
    keras3.utils.set_random_seed(0)  # its initial weights too
    return keras3.Sequential([keras3.Input(shape), *([L.Rescaling(1 / 255.0)] if rescale else []),
                              L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(), L.Conv2D(16, 3, activation="relu"),
                              L.MaxPooling2D(), L.Flatten(), L.Dropout(0.2), L.Dense(classes, activation="softmax")])


def _mobilenet_style(shape):
    """A functional graph with what channel surgery must follow: SeparableConv2D, Add, Concatenate, BN."""
    keras3.utils.set_random_seed(0)  # its initial weights too
    inputs = keras3.Input(shape)
    x = L.RandomFlip("horizontal")(inputs)
    x = L.Rescaling(1 / 127.5, offset=-1)(x)
    x = L.ReLU()(L.BatchNormalization(momentum=0.8)(L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x)))
    y = L.ReLU()(L.BatchNormalization(momentum=0.8)(L.SeparableConv2D(16, 3, padding="same", use_bias=False)(x)))
    x = L.Add()([x, y])
    z = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.Concatenate()([x, L.ReLU()(L.Conv2D(8, 1)(z))])
    x = L.GlobalAveragePooling2D()(L.SeparableConv2D(24, 3, strides=2, padding="same", activation="relu")(x))
    return keras3.Model(inputs, L.Dense(3)(x), name="mobilenet_style")


@pytest.fixture(scope="module")
def tutorial(bar_dataset):
    return _fit(_tutorial_cnn(bar_dataset.input_shape), bar_dataset)


@pytest.fixture(scope="module")
def mobilenet_file(bar_dataset, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("own") / "mobilenet.keras"
    model = _mobilenet_style(bar_dataset.input_shape)
    model.compile(keras3.optimizers.Adam(3e-3), keras3.losses.SparseCategoricalCrossentropy(from_logits=True))
    keras3.utils.set_random_seed(0)
    model.fit(bar_dataset.x_train.astype("float32"), bar_dataset.y_train, epochs=5, batch_size=32, verbose=0)
    model.save(path)
    return path


def _accuracy(model, dataset, scale: float = 1.0) -> float:
    scores = model.predict(dataset.x_val.astype("float32") * scale, verbose=0)
    return float(np.mean(np.argmax(scores, axis=1) == dataset.y_val))


def test_every_file_format_is_rebuilt_as_the_same_tf_keras_model(tutorial, bar_dataset, tmp_path):
    expected = _accuracy(tutorial, bar_dataset)
    assert expected > 0.6  # it learned (chance is 1/3)
    files = {"keras3.keras": tmp_path / "k3.keras", "keras3.h5": tmp_path / "k3.h5"}
    for path in files.values():
        tutorial.save(path)
    rebuilt, notes = to_tf_keras(tutorial)
    assert any("softmax" in note for note in notes)
    for kind, path in {"tf_keras.keras": tmp_path / "tk.keras", "tf_keras.h5": tmp_path / "tk.h5",
                       "tf_keras SavedModel": tmp_path / "tk_savedmodel"}.items():
        rebuilt.save(path)
        files[kind] = path
    reference = tutorial.predict(bar_dataset.x_val.astype("float32"), verbose=0)
    for kind, path in files.items():
        own = prepare(bar_dataset, path, tmp_path / "cache")
        model = own.load()
        assert isinstance(model, tf_keras.Model), kind
        assert own.val_accuracy == pytest.approx(expected), kind
        logits = model.predict(bar_dataset.x_val, verbose=0)
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # its softmax was dropped
        np.testing.assert_allclose(probabilities, reference, atol=1e-4, err_msg=kind)


def test_channel_surgery_follows_separable_convs_adds_and_concatenations(mobilenet_file, bar_dataset, tmp_path):
    model = prepare(bar_dataset, mobilenet_file, tmp_path / "cache").load()
    whole = prune.prune_channels(model, 0.0, "local", "all")
    np.testing.assert_allclose(whole.predict(bar_dataset.x_val, verbose=0),
                               model.predict(bar_dataset.x_val, verbose=0), atol=1e-5)
    half = prune.prune_channels(model, 0.5, "local", "all")
    assert half.count_params() < 0.5 * model.count_params()
    reshaped = tf_keras.Sequential([tf_keras.Input((16, 16, 1)), tf_keras.layers.Conv2D(4, 3),
                                    tf_keras.layers.Reshape((14 * 14 * 4,)), tf_keras.layers.Dense(3)])
    with pytest.raises(UserError, match=r"does not support Reshape layers \(reshape"):
        prune.prune_channels(to_tf_keras(reshaped)[0], 0.5, "local", "all")


def test_compress_model_channel_prunes_it_from_its_weights_distilled_from_itself(mobilenet_file, bar_dataset,
                                                                                 bar_npz, tmp_path):
    own = prepare(bar_dataset, mobilenet_file, tmp_path / "cache")
    runs = {"whole": ("--quant", "int8"),
            "channel": ("--sparsity", 0.3, "--prune-structure", "channel", "--prune-layers", "all", "--alpha", 0.5,
                        "--finetune-epochs", 2, "--quant", "int8")}
    results = {}
    for name, flags in runs.items():
        run_cli("compress", "--dataset", bar_npz, "--model", mobilenet_file, *flags, "--out", tmp_path / name,
                "--cache-dir", tmp_path / "cache", check=True)
        results[name] = json.loads((tmp_path / name / "result.json").read_text())
        tflite = tmp_path / name / "model.tflite"
        assert tflite_docs_accuracy(str(tflite), bar_dataset.x_test, bar_dataset.y_test) == \
            pytest.approx(results[name]["test_accuracy"], abs=1e-9)
    whole, pruned = results["whole"], results["channel"]
    assert whole["config"]["student"] == "model" and whole["reused"] == ["your model"]
    assert whole["params"] == own.params and whole["val_accuracy"] >= own.val_accuracy - 0.05
    assert pruned["params"] < 0.7 * own.params and pruned["tflite_bytes"] < whole["tflite_bytes"]
    assert pruned["teacher"] == "user:mobilenet.keras" and pruned["val_accuracy"] > 0.5
    assert "raw pixels 0-255" in pruned["input_contract"]["preprocessing"]


def test_the_input_contract_is_declared_checked_and_folded_in(bar_dataset, tmp_path):
    path = tmp_path / "unit.keras"
    unit = _fit(_tutorial_cnn(bar_dataset.input_shape, rescale=False), bar_dataset, scale=1 / 255)
    unit.save(path)
    with pytest.raises(UserError, match=r"fed raw pixels 0-255 .* declare what it takes: --input-scale 0.0039215686"):
        prepare(bar_dataset, path, tmp_path / "cache")
    scaling = InputScaling(1 / 255)
    own = prepare(bar_dataset, path, tmp_path / "cache", scaling)
    assert own.val_accuracy == pytest.approx(_accuracy(unit, bar_dataset, 1 / 255)) and own.val_accuracy > 0.6
    assert own.load().layers[1].name == "input_scaling"
    from autocompress.api import compress

    result = compress(CompressionConfig(student="model", quant="int8"), bar_dataset, tmp_path / "out",
                      cache_dir=tmp_path / "cache", model_path=path, scaling=scaling)
    contract = json.loads((tmp_path / "out" / "result.json").read_text())["input_contract"]
    assert "pixels * 0.00392157 + 0" in contract["preprocessing"] and contract["value_range"] == [0, 255]
    assert tflite_docs_accuracy(result.tflite_path, bar_dataset.x_test, bar_dataset.y_test) == \
        pytest.approx(result.test_accuracy, abs=1e-9) and result.test_accuracy > 0.6


def test_a_student_family_of_your_own(bar_dataset, tmp_path, monkeypatch):
    (tmp_path / "my_family.py").write_text(
        "import keras\n\n\ndef build(input_shape, num_classes, width):\n"
        "    L = keras.layers\n"
        "    return keras.Sequential([keras.Input(input_shape), L.Rescaling(1 / 255), L.Conv2D(int(8 * width), 3),\n"
        "                             L.ReLU(), L.GlobalAveragePooling2D(), L.Dense(num_classes)])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    narrow, wide = (build_student("my_family:build", (16, 16, 1), 3, width) for width in (1.0, 2.0))
    assert isinstance(narrow, tf_keras.Model) and wide.count_params() > narrow.count_params()
    assert CompressionConfig(student="my_family:build", width=1.0).label().startswith("my_family:build w1.00")
    with pytest.raises(UserError, match="cannot import student family"):
        build_student("no_such_module:build", (16, 16, 1), 3)


def test_bad_model_files_get_one_line_and_exit_2(bar_npz, tmp_path, capsys):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a model")
    wrong_shape, wrong_classes = tmp_path / "shape.keras", tmp_path / "classes.keras"
    _tutorial_cnn((20, 20, 1)).save(wrong_shape)
    keras3.Sequential([keras3.Input((16, 16, 1)), L.Flatten(), L.Dense(5)]).save(wrong_classes)
    unsupported, lambda_file = tmp_path / "upsampling.keras", tmp_path / "lambda.keras"
    keras3.Sequential([keras3.Input((16, 16, 1)), L.UpSampling2D(), L.Flatten(), L.Dense(3)]).save(unsupported)
    keras3.Sequential([keras3.Input((16, 16, 1)), L.Lambda(lambda x: x / 255), L.Flatten(), L.Dense(3)]).save(lambda_file)
    expected = {junk: "cannot load model", wrong_shape: "takes inputs of shape (None, 20, 20, 1)",
                wrong_classes: "outputs shape (None, 5)", unsupported: "up_sampling2d (UpSampling2D) cannot be converted",
                lambda_file: "has a Lambda layer", tmp_path / "missing.keras": "does not exist"}
    for path, fragment in expected.items():  # the CLI as a user runs it, in this process (TensorFlow loaded once)
        line = _cli_error(["compress", "--dataset", bar_npz, "--out", tmp_path / "out", "--model", path,
                           "--cache-dir", tmp_path / "cache"], capsys)
        assert fragment in line, line
    assert not (tmp_path / "out" / "model.tflite").exists()


def _cli_error(argv: list, capsys) -> str:
    """``autocompress ARGV`` through its console entry point: exit 2 and one ``error:`` line, no traceback."""
    from autocompress import cli

    capsys.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["autocompress", *map(str, argv)])
        with pytest.raises(SystemExit) as exited:
            cli.main()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert exited.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_search_model_then_export_it(bar_npz, bar_dataset, mobilenet_file, tmp_path):
    space = tmp_path / "space.toml"
    space.write_text('[space]\nstudent = "model"\nfinetune_epochs = 2\nbatch_size = 32\ndistill = false\n'
                     'prune_structure = ["none", "channel"]\nsparsity = 0.3\nprune_layers = "all"\nquant = "int8"\n')
    out = tmp_path / "study"
    searched = run_cli(*search_command(bar_npz, space, tmp_path / "cache", out, "--model", mobilenet_file,
                                       "--trials", 2, "--seed", 0)[3:])
    assert searched.returncode == 0, searched.stderr[-3000:]
    study = open_study(out)
    done = {t.user_attrs["label"]: t.number for t in study.trials if t.state.name == "COMPLETE"
            and "repeats" not in t.user_attrs}
    assert set(done) == {"model int8", "model 30% local channel all int8"}, done
    for label, number in done.items():
        exported = run_cli("export", "--study-dir", out, "--study", "bars", "--trial", number, "--out", tmp_path / label)
        assert exported.returncode == 0, exported.stderr[-3000:]
        card = json.loads((tmp_path / label / "model.json").read_text())
        assert card["label"] == label and card["input_contract"]["preprocessing"].endswith("feed raw pixels 0-255")
        assert card["test_accuracy_at_export"] > 0.5


def test_your_model_unpruned_and_without_qat_distils_nothing_so_its_kd_choices_collapse():
    plain = CompressionConfig(student="model", quant="int8")
    assert CompressionConfig(student="model", alpha=0.3, temperature=2.0, quant="int8") == plain
    assert CompressionConfig(student="model", alpha=0.3, quant="qat").alpha == 0.3  # QAT fine-tunes it
    assert CompressionConfig(student="model", alpha=0.3, sparsity=0.5, prune_structure="channel").alpha == 0.3
