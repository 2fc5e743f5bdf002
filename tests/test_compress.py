"""The compression pipeline on tiny data: every stage, measured on the real exported files."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from rich.console import Console

from autocompress._tf import keras, tf
from autocompress.architectures import OWN_MODEL
from autocompress.compress import measure, pipeline, prune, quantize
from autocompress.compress.config import CompressionConfig
from autocompress.errors import UserError
from autocompress.models import build_model
from autocompress.progress import training_display
from autocompress.training import DistillationLoss, TrainingConfig, train

from helpers import tflite_docs_accuracy

BASE = dict(student="cnn", width=0.5, epochs=2, finetune_epochs=1, batch_size=32)


@pytest.fixture(scope="module")
def context(bar_dataset, session_cache, bar_teacher):
    return pipeline.Context(bar_dataset, session_cache, bar_teacher)


@pytest.fixture(scope="module")
def run(context, tmp_path_factory):
    """Run a configuration once per module (the pipeline's own cache makes repeats cheap)."""
    results = {}

    def go(**overrides):
        config = CompressionConfig(**{**BASE, **overrides})
        if config not in results:
            results[config] = pipeline.run(config, context, tmp_path_factory.mktemp("run"))
        return results[config]

    return go


def test_alpha_one_is_exactly_plain_cross_entropy():
    rng = np.random.default_rng(0)
    labels = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 64)]
    teacher = rng.normal(size=(64, 5)).astype(np.float32)
    student = rng.normal(size=(64, 5)).astype(np.float32)
    ours = DistillationLoss(5, temperature=4.0, alpha=1.0)(np.concatenate([labels, teacher], 1), student)
    plain = keras.losses.CategoricalCrossentropy(from_logits=True)(labels, student)
    assert float(ours) == pytest.approx(float(plain), rel=1e-6)
    distilled = DistillationLoss(5, temperature=4.0, alpha=0.5)(np.concatenate([labels, teacher], 1), student)
    assert float(distilled) != pytest.approx(float(plain), rel=1e-3)


def test_alpha_one_training_ignores_the_teacher(bar_dataset):
    def trained(**kd):
        keras.utils.set_random_seed(3)
        tf.config.experimental.enable_op_determinism()
        model = build_model("paper-mnist-student", bar_dataset.input_shape, bar_dataset.num_classes)
        train(model, bar_dataset.x_train, bar_dataset.y_train, bar_dataset.num_classes,
              TrainingConfig(epochs=1, batch_size=64), **kd)
        return model.get_weights()

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(len(bar_dataset.x_train), bar_dataset.num_classes)).astype(np.float32)
    plain, with_teacher = trained(), trained(teacher_logits=logits, temperature=3.0, alpha=1.0)
    assert all(np.array_equal(a, b) for a, b in zip(plain, with_teacher))


def test_training_progress_is_a_bar_in_a_terminal_and_a_line_per_epoch_in_a_log(bar_dataset):
    def shown(terminal: bool):
        out = io.StringIO()
        with training_display(Console(file=out, force_terminal=terminal, width=200), "teacher on bars") as callback:
            model = build_model("paper-mnist-student", bar_dataset.input_shape, bar_dataset.num_classes)
            train(model, bar_dataset.x_train, bar_dataset.y_train, bar_dataset.num_classes,
                  TrainingConfig(epochs=2, batch_size=16), callbacks=[callback])
        return callback, out.getvalue()

    bar, _ = shown(terminal=True)
    task = bar.progress.tasks[0]
    assert task.completed == task.total == 2 * math.ceil(len(bar_dataset.x_train) / 16)
    assert task.fields["status"].startswith("epoch 2/2")
    _, log = shown(terminal=False)
    lines = log.splitlines()
    assert [line.split(" loss")[0] for line in lines] == ["teacher on bars: epoch 1/2", "teacher on bars: epoch 2/2"]
    assert re.search(r"loss \d+\.\d{3} acc [01]\.\d{3}, eta 0\.0 min$", lines[-1]), lines


def test_float_export_matches_keras_and_reports_its_real_size(run, bar_dataset):
    result = run()
    assert result.tflite_bytes == os.path.getsize(result.tflite_path)
    assert result.gzip_bytes == len(gzip.compress(open(result.tflite_path, "rb").read(), 9, mtime=0))
    model = keras.models.load_model(result.keras_path, compile=False)
    keras_predictions = np.argmax(model.predict(bar_dataset.x_test.astype(np.float32), verbose=0), axis=1)
    tflite_predictions = measure.predict(result.tflite_path, bar_dataset.x_test)
    assert np.mean(keras_predictions == tflite_predictions) >= 0.99
    assert result.test_accuracy > 0.6  # chance is 1/3: the pipeline really trains
    saved = json.loads((Path(result.tflite_path).parent / "result.json").read_text())
    assert saved["config"]["width"] == 0.5 and saved["tflite_bytes"] == result.tflite_bytes


def test_input_contract_raw_pixels_give_the_reported_accuracy(run, bar_dataset):
    for quant in ("none", "int8"):
        result = run(quant=quant)
        interpreter = Interpreter(model_path=result.tflite_path)
        entry = interpreter.get_input_details()[0]
        assert entry["dtype"].__name__ == result.input_contract.dtype
        assert tuple(entry["shape"]) == result.input_contract.shape
        correct = 0
        interpreter.allocate_tensors()
        for image, label in zip(bar_dataset.x_test, bar_dataset.y_test):  # raw 0-255 pixels, one at a time
            interpreter.set_tensor(entry["index"], image[None].astype(entry["dtype"]))
            interpreter.invoke()
            correct += int(np.argmax(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])) == label)
        assert correct / len(bar_dataset.y_test) == pytest.approx(result.test_accuracy, abs=1e-9)


def test_int8_models_hold_int8_tensors_and_float16_halves_the_file(run):
    float_result, int8_result, half_result = run(), run(quant="int8"), run(quant="float16")
    interpreter = Interpreter(model_path=int8_result.tflite_path)
    dtypes = {d["dtype"].__name__ for d in interpreter.get_tensor_details()}
    assert "int8" in dtypes and interpreter.get_input_details()[0]["dtype"].__name__ == "uint8"
    assert 0.4 < half_result.tflite_bytes / float_result.tflite_bytes < 0.6
    assert int8_result.tflite_bytes < 0.4 * float_result.tflite_bytes


@pytest.fixture(scope="module")
def colour_run(session_cache, tmp_path_factory):
    """``run`` on colour bars (3 channels), without a teacher."""
    from autocompress.data import load_dataset

    from helpers import write_bar_npz

    dataset = load_dataset(str(write_bar_npz(tmp_path_factory.mktemp("colour") / "colour.npz", channels=3)))
    context = pipeline.Context(dataset, session_cache)

    def go(**overrides):
        return pipeline.run(CompressionConfig(**{**BASE, **overrides}), context, tmp_path_factory.mktemp("colour-run"))

    return dataset, go


@pytest.mark.parametrize("overrides", [
    dict(quant="none"), dict(quant="dynamic"), dict(quant="float16"), dict(quant="int8"),
    dict(quant="int8", per_channel=False, strip_names=True), dict(quant="qat"),
    dict(quant="int8", colour=True), dict(quant="qat", colour=True),
], ids=lambda o: "-".join(str(v) for v in o.values()))
def test_tflites_documented_input_recipe_on_raw_pixels_gives_the_recorded_accuracy(run, colour_run, bar_dataset,
                                                                                   overrides):
    overrides = dict(overrides)
    dataset, go = colour_run if overrides.pop("colour", False) else (bar_dataset, run)
    result = go(**overrides)
    interpreter = Interpreter(model_path=result.tflite_path)
    if overrides["quant"] in ("int8", "qat"):  # raw pixels are the real values: scale 1, zero point 0
        assert interpreter.get_input_details()[0]["quantization"] == (1.0, 0)
    assert tflite_docs_accuracy(result.tflite_path, dataset.x_test, dataset.y_test) == \
        pytest.approx(result.test_accuracy, abs=1e-9)
    assert result.test_accuracy > 0.5  # chance is 1/3


def test_a_second_run_reuses_the_cached_student_and_pruned_model(context, tmp_path):
    config = CompressionConfig(**{**BASE, "seed": 11, "sparsity": 0.3, "prune_structure": "channel"})
    first = pipeline.run(config, context, tmp_path / "first")
    second = pipeline.run(config, context, tmp_path / "second")
    assert first.reused == () and second.reused == ("student", "pruned model")
    assert second.val_accuracy == first.val_accuracy and second.tflite_bytes == first.tflite_bytes


def test_per_tensor_int8_keeps_one_scale_per_weight_tensor_and_shrinks_the_file(run):
    per_channel, per_tensor = run(quant="int8"), run(quant="int8", per_channel=False)
    scales = lambda path: [len(d["quantization_parameters"]["scales"])  # noqa: E731
                           for d in Interpreter(model_path=path).get_tensor_details()]
    assert max(scales(per_channel.tflite_path)) > 1 and max(scales(per_tensor.tflite_path)) == 1
    assert per_tensor.tflite_bytes < per_channel.tflite_bytes
    assert abs(per_tensor.val_accuracy - per_channel.val_accuracy) < 0.2


def test_stripped_names_shrink_the_file_and_keep_its_predictions(run, bar_dataset):
    named, stripped = run(quant="int8"), run(quant="int8", strip_names=True)
    assert stripped.tflite_bytes < named.tflite_bytes
    assert not any(d["name"] for d in Interpreter(model_path=stripped.tflite_path).get_tensor_details())
    np.testing.assert_array_equal(measure.predict(Path(stripped.tflite_path), bar_dataset.x_test),
                                  measure.predict(Path(named.tflite_path), bar_dataset.x_test))


@pytest.mark.parametrize("quant", ["none", "dynamic", "float16", "int8", "qat"])
def test_a_named_file_is_what_tflites_keras_path_writes_and_a_stripped_one_computes_the_same(run, bar_dataset,
                                                                                             tmp_path, quant):
    """Ours is converted from the traced call and given its signature; TFLite's own Keras path (through
    a SavedModel), set the same way, is the reference: the same signature, input and outputs."""
    model = keras.models.load_model(run().keras_path, compile=False)
    if quant == "qat":
        model = quantize.prepare_qat(model, sparse=False)
    files = {"named": quantize.convert(model, quant, bar_dataset.x_train),
             "stripped": quantize.convert(model, quant, bar_dataset.x_train, strip_names=True),
             "tflite": quantize.configure(tf.lite.TFLiteConverter.from_keras_model(model), quant,
                                          bar_dataset.x_train).convert()}
    for name, content in files.items():
        (tmp_path / f"{name}.tflite").write_bytes(content)
    named, stripped, reference = (Interpreter(model_path=str(tmp_path / f"{n}.tflite")) for n in files)
    assert named.get_signature_list() == reference.get_signature_list() == {
        "serving_default": {"inputs": ["pixels"], "outputs": [model.output_names[0]]}}
    assert stripped.get_signature_list() == {} and len(files["stripped"]) < len(files["named"]) <= len(files["tflite"])
    given, expected = ({key: str(i.get_input_details()[0][key]) for key in ("dtype", "shape_signature", "quantization")}
                       for i in (named, reference))
    assert given == expected
    pixels = bar_dataset.x_test[:64].astype(named.get_input_details()[0]["dtype"])
    by_signature = [interpreter.get_signature_runner("serving_default")(pixels=pixels)
                    for interpreter in (named, reference)]
    np.testing.assert_array_equal(*(list(outputs.values())[0] for outputs in by_signature))
    np.testing.assert_array_equal(*(measure.outputs(tmp_path / f"{n}.tflite", bar_dataset.x_test)
                                    for n in ("named", "stripped")))


@pytest.mark.parametrize("scope", ["local", "global"])
def test_unstructured_pruning_reaches_its_target_sparsity(run, scope):
    result = run(sparsity=0.6, prune_scope=scope, prune_layers="all")
    assert result.sparsity == pytest.approx(0.6, abs=0.01)


def test_global_pruning_gives_layers_unequal_sparsity(run):
    local = run(sparsity=0.6, prune_scope="local", prune_layers="all").layer_sparsity
    global_ = run(sparsity=0.6, prune_scope="global", prune_layers="all").layer_sparsity
    assert max(local.values()) - min(local.values()) < 0.02
    assert max(global_.values()) - min(global_.values()) > 0.1


def test_channel_pruning_rebuilds_a_smaller_model(run, bar_dataset):
    dense, pruned = run(), run(sparsity=0.5, prune_structure="channel")
    # cnn x0.5 with half its filters removed in every conv is exactly cnn x0.25
    expected = build_model("cnn", bar_dataset.input_shape, bar_dataset.num_classes, width=0.25).count_params()
    assert pruned.params == expected
    assert pruned.tflite_bytes / dense.tflite_bytes == pytest.approx(expected / dense.params, abs=0.05)
    assert pruned.test_accuracy > 0.6


def test_channel_pruning_keeps_residual_groups_consistent(bar_dataset):
    model = build_model("resnet8", bar_dataset.input_shape, bar_dataset.num_classes, width=1.0)
    smaller = prune.prune_channels(model, 0.5, "global", "conv")
    assert smaller.count_params() < 0.6 * model.count_params()
    x = bar_dataset.x_test[:4].astype(np.float32)
    assert smaller.predict(x, verbose=0).shape == (4, bar_dataset.num_classes)


def test_two_four_pruning_halves_eligible_layers_and_reports_the_rest(run):
    result = run(sparsity=0.5, prune_structure="2:4", prune_layers="all")
    assert result.layer_sparsity["s0a_conv"] == 0.0  # one input channel: cannot be 2:4
    assert any("s0a_conv" in note for note in result.notes)
    assert all(abs(v - 0.5) < 0.01 for name, v in result.layer_sparsity.items() if name != "s0a_conv")


def test_pruned_qat_model_keeps_its_zeros_and_is_int8(run):
    """Read from the written file: int8 input and convolution kernels, half of each kernel's weights
    exactly zero (QAT fine-tuning kept the pruning masks), the recorded sparsity that of the file."""
    result = run(sparsity=0.5, quant="qat", alpha=0.5)
    interpreter = Interpreter(model_path=result.tflite_path)
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8 and result.input_contract.dtype == "uint8"
    kernels = [d for d in interpreter.get_tensor_details() if len(d["shape"]) == 4 and d["shape"][0] > 1]
    assert kernels and all(d["dtype"] == np.int8 for d in kernels)  # weights (activations have batch 1)
    zeros = [float(np.mean(interpreter.get_tensor(d["index"]) == 0)) for d in kernels]
    assert all(share == pytest.approx(0.5, abs=0.02) for share in zeros), zeros
    assert result.sparsity == pytest.approx(0.5, abs=0.01)
    assert result.teacher is not None and result.test_accuracy > 0.6


def test_stages_not_asked_for_are_skipped(run):
    result = run()
    assert set(result.stage_seconds) == {"distill", "convert", "measure"}
    assert result.teacher is None and result.sparsity == 0.0


def test_labels_read_like_the_configuration():
    assert CompressionConfig(width=0.5, alpha=0.3, sparsity=0.6, prune_scope="global", prune_structure="channel",
                             quant="int8", per_channel=False, strip_names=True, epochs=20).label() == \
        "cnn w0.50 20ep T4 a0.3 60% global channel conv int8 per-tensor stripped"
    assert CompressionConfig(student="paper-mnist-student", quant="dynamic", epochs=10).label() == \
        "paper-mnist-student 10ep dynamic"
    assert CompressionConfig(student=OWN_MODEL, quant="int8").label() == "model int8"  # trained already


@pytest.mark.parametrize("overrides, message", [
    (dict(sparsity=1.0), "sparsity must be in"),
    (dict(sparsity=-0.1), "sparsity must be in"),
    (dict(temperature=0), "temperature must be > 0"),
    (dict(alpha=1.5), "alpha must be in"),
    (dict(prune_structure="2:4", sparsity=0.7), "2:4 pruning always removes half"),
    (dict(quant="int4"), "quant must be one of"),
    (dict(prune_scope="row"), "prune scope"),
    (dict(quant="qat", per_channel=False), "QAT learns per-channel scales"),
    (dict(quant="dynamic", per_channel=False), "per-tensor scales apply to int8 PTQ only"),
])
def test_invalid_configurations_fail_before_any_training(overrides, message):
    with pytest.raises(UserError, match=message):
        CompressionConfig(**{**BASE, **overrides})


def test_a_collapsed_training_is_one_line_with_what_to_try_and_keeps_what_was_trained(tmp_path):
    """Noise images, 95% of them class 0: the student predicts 0 for every image, deterministically.
    ``compress`` says so on one line (what to try, exit 2, no traceback) and keeps the trained student."""
    from helpers import assert_user_error, run_cli

    rng = np.random.default_rng(0)
    split = {}
    for name, n in (("train", 400), ("test", 100)):
        split[f"x_{name}"] = rng.integers(0, 256, (n, 16, 16, 1)).astype(np.uint8)
        split[f"y_{name}"] = (np.arange(n) % 20 == 0).astype(np.int64)
    np.savez(tmp_path / "lopsided.npz", **split)
    done = run_cli("compress", "--dataset", tmp_path / "lopsided.npz", "--epochs", 1, "--quant", "int8",
                   "--out", tmp_path / "o", "--cache-dir", tmp_path / "cache")
    assert_user_error(done, "collapsed", "more epochs", "lower learning rate")
    assert len(list((tmp_path / "cache" / "students").glob("cnn-*.keras"))) == 1
    assert (tmp_path / "o" / "model.tflite").is_file()


def test_the_configuration_owns_its_rules_and_loads_no_tensorflow():
    import subprocess
    import sys

    two_four = CompressionConfig(prune_structure="2:4")  # from Python, as from the CLI or a space file
    assert two_four.sparsity == 0.5 and two_four.prunes
    probe = "import sys, autocompress.compress.config; print(sorted(m for m in sys.modules if m.startswith('tensorflow')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
