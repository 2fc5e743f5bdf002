"""TensorFlow Lite Micro figures on real files: the arena against TFLM's own report, MACs against the
Keras layers, the reasons TFLM cannot run a file, and a search with RAM as an objective and a constraint."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState

from helpers import assert_user_error, open_study, run_cli

ALLOCATIONS = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime

path, arena = sys.argv[1], int(sys.argv[2])
interpreter = runtime.Interpreter.from_file(path, arena_size=arena)
entry = interpreter.get_input_details(0)
interpreter.set_input(np.zeros(entry["shape"], entry["dtype"]), 0)
interpreter.invoke()
interpreter.print_allocations()
"""


def tflm_report(path: Path, arena: int) -> subprocess.CompletedProcess:
    """TFLM run in ``arena`` bytes on a blank image, its allocations printed (to the C stdout)."""
    return subprocess.run([sys.executable, "-c", ALLOCATIONS, str(path), str(arena)], capture_output=True, text=True,
                          timeout=120)


def test_recorded_arena_is_tflm_own_figure_and_enough(tiny_study):
    from autocompress.compress.micro import ARENA_ALIGNMENT

    trials = tiny_study.load().get_trials(states=(TrialState.COMPLETE,))
    assert trials
    for trial in trials:
        path = tiny_study.folder / "trials" / f"{trial.number:05d}" / "model.tflite"
        recorded = trial.user_attrs["arena_bytes"]
        printed = tflm_report(path, 64 * 1024 ** 2)
        totals = [int(line.split("total ")[1].split()[0]) for line in (printed.stdout + printed.stderr).splitlines()
                  if "Arena allocation total" in line]
        assert len(totals) == 1, printed.stdout + printed.stderr
        assert recorded == -(-totals[0] // ARENA_ALIGNMENT) * ARENA_ALIGNMENT
        assert tflm_report(path, recorded).returncode == 0  # kTensorArenaSize = the recorded figure works
        assert tflm_report(path, recorded - ARENA_ALIGNMENT).returncode != 0  # and nothing much smaller does
        assert trial.user_attrs["tflm_agreement"] >= 0.95 and trial.user_attrs["tflm_error"] is None


def _keras_macs(model) -> int:
    from autocompress._tf import keras

    total = 0
    for layer in model.layers:
        out = math.prod(layer.output.shape[1:])
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            total += out * math.prod(layer.kernel_size)
        elif isinstance(layer, keras.layers.Conv2D):
            total += out * math.prod(layer.kernel_size) * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += out * layer.input.shape[-1]
    return total


@pytest.mark.parametrize("student", ["dscnn"])  # depthwise, pointwise conv and dense
def test_macs_and_arena_bound_of_converted_students(bar_dataset, tmp_path, student):
    """The flatbuffer's MACs equal the Keras layers'; the arena TFLM measures is at least the lower bound
    that ``--max-ram`` prunes with, and TFLM agrees with LiteRT."""
    from autocompress.compress import measure, micro, quantize
    from autocompress.compress.config import CompressionConfig
    from autocompress.models import build_model
    from autocompress.compress.predict import predicted_arena_bytes

    config = CompressionConfig(student=student, width=0.25, quant="int8")
    model = build_model(student, bar_dataset.input_shape, bar_dataset.num_classes, width=0.25)
    path = tmp_path / "model.tflite"
    path.write_bytes(quantize.convert(model, "int8", bar_dataset.x_train))
    assert micro.macs(path) == _keras_macs(model) > 0
    x = bar_dataset.x_val[:40]
    measured = micro.run(path, x, measure.predict(path, x))
    bound = predicted_arena_bytes(config, bar_dataset.input_shape, bar_dataset.num_classes)
    assert measured.reason is None and 0 < bound <= measured.arena_bytes
    assert measured.agreement >= 0.9  # untrained: near-tied logits round either way
    quantization = micro.io_quantization(path)
    assert quantization["input"]["dtype"] == "uint8" and quantization["input"]["scale"] > 0
    assert quantization["output"]["shape"] == [1, bar_dataset.num_classes]


def test_global_channel_pruning_bounds_hold_whatever_training_made_of_the_weights(bar_dataset, tmp_path):
    """Global scope prunes more from a layer whose filters training left uneven: the bounds ``--max-size``
    and ``--max-ram`` reject with must still be below that model's weights and TFLM's arena."""
    from autocompress.compress import measure, micro, prune, quantize
    from autocompress.compress.config import CompressionConfig
    from autocompress.compress.predict import predicted_arena_bytes, predicted_weight_bytes
    from autocompress.models import build_model

    config = CompressionConfig(student="dscnn", width=0.5, sparsity=0.5, prune_scope="global",
                               prune_structure="channel", prune_layers="conv", quant="int8")
    shape, classes = bar_dataset.input_shape, bar_dataset.num_classes
    model = build_model("dscnn", shape, classes, width=0.5)
    layer = model.get_layer("b2_pw_conv")  # as if trained: one strong filter, the others faint
    kernel, *rest = layer.get_weights()
    layer.set_weights([np.concatenate([kernel[..., :1], 1e-3 * kernel[..., 1:]], axis=-1), *rest])
    pruned = prune.prune_channels(model, 0.5, "global", "conv")
    assert pruned.get_layer("b2_pw_conv").filters == 1
    path = tmp_path / "model.tflite"
    path.write_bytes(quantize.convert(pruned, "int8", bar_dataset.x_train))
    x = bar_dataset.x_val[:20]
    measured = micro.run(path, x, measure.predict(path, x))
    assert predicted_weight_bytes(config, shape, classes) <= pruned.count_params()  # int8: a byte a weight
    assert predicted_arena_bytes(config, shape, classes) <= measured.arena_bytes


def test_a_file_tflm_cannot_run_is_recorded_with_the_reason(bar_dataset, tmp_path):
    from autocompress.compress import measure, micro, quantize
    from autocompress.models import build_model

    model = build_model("cnn", bar_dataset.input_shape, bar_dataset.num_classes, width=0.25)
    path = tmp_path / "dynamic.tflite"
    path.write_bytes(quantize.convert(model, "dynamic", bar_dataset.x_train))
    x = bar_dataset.x_val[:5]
    measured = micro.run(path, x, measure.predict(path, x))
    assert measured.arena_bytes is None and measured.agreement is None
    assert "Hybrid models are not supported" in measured.reason
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer" * 8)
    assert micro.run(garbage, x, np.zeros(len(x))).reason  # refused or crashed: a reason, not an exception


def test_resolver_calls_and_identifiers():
    from autocompress.compress.micro import resolver_call
    from autocompress.firmware import identifier

    assert [resolver_call(op) for op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "RELU6", "MAX_POOL_2D")
            ] == ["AddConv2D", "AddDepthwiseConv2D", "AddFullyConnected", "AddRelu6", "AddMaxPool2D"]
    assert identifier("fashion-mnist 2") == "fashion_mnist_2" and identifier("10 classes") == "model_10_classes"


RAM_SPACE = """
[space]
student = "cnn"
width = 0.25
epochs = 1
batch_size = 32
quant = ["int8", "dynamic"]
strip_names = [true, false]
"""


@pytest.fixture(scope="module")
def ram_study(bar_npz, session_cache, tmp_path_factory) -> Path:
    """A 3-objective (accuracy, size, ram) search of the bar data under --max-ram 64KB, each file also
    estimated on an Ethos-U55 (--npu)."""
    root = tmp_path_factory.mktemp("ram-study")
    (root / "space.toml").write_text(RAM_SPACE)
    result = run_cli("search", "--dataset", bar_npz, "--trials", 2, "--config", root / "space.toml", "--out",
                     root / "study", "--cache-dir", session_cache, "--seed", 0, "--quiet",
                     "--objectives", "accuracy,size,ram", "--max-ram", "64KB", "--npu", "ethos-u55-128", timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return root / "study"


def test_three_objective_search_under_a_ram_budget(ram_study):

    study = open_study(ram_study)
    assert study.metric_names == ["validation accuracy", "tflite bytes", "arena bytes"]
    completed = study.get_trials(states=(TrialState.COMPLETE,))
    # dynamic-range files, which TFLite Micro does not run, are left out of the space: no trial is spent on one
    assert study.user_attrs["space"]["quant"] == {"value": "int8"}
    assert len(completed) == len(study.trials) == 2 and {t.params["strip_names"] for t in completed} == {True, False}
    for trial in completed:
        assert trial.user_attrs["config"]["quant"] == "int8"
        assert trial.values[2] == trial.user_attrs["arena_bytes"] <= 64 * 1024
        assert trial.constraints == {"max_ram": trial.user_attrs["arena_bytes"] - 64 * 1024}
        assert trial.user_attrs["macs"] > 0 and trial.user_attrs["predicted_min_arena_bytes"] <= trial.values[2]
    with open(ram_study / "front.csv") as handle:
        rows = list(csv.DictReader(handle))
    front = {t.number: t for t in study.best_trials}
    assert {int(row["trial"]) for row in rows} == set(front)
    assert all(int(row["arena_bytes"]) == front[int(row["trial"])].values[2] and int(row["macs"]) > 0 for row in rows)
    assert all(float(row["npu_ms"]) == front[int(row["trial"])].user_attrs["npu_ms"] > 0 for row in rows)


def test_npu_estimates_are_velas_own(ram_study, tmp_path):
    """Each full-integer trial's NPU figures are those Arm's ``vela`` command prints for its file."""
    study = open_study(ram_study)
    completed = study.get_trials(states=(TrialState.COMPLETE,))
    assert completed
    for trial in completed:
        out = tmp_path / str(trial.number)
        subprocess.run([Path(sys.executable).parent / "vela", ram_study / "trials" / f"{trial.number:05d}" / "model.tflite",
                        "--accelerator-config", "ethos-u55-128", "--output-dir", out], check=True, capture_output=True)
        with open(next(out.glob("*_summary_*.csv")), newline="") as handle:
            vela = next(csv.DictReader(handle))
        attrs = trial.user_attrs
        assert attrs["npu"] == "ethos-u55-128" and attrs["npu_error"] is None
        assert attrs["npu_ms"] == pytest.approx(1000 * float(vela["inference_time"]))
        assert attrs["npu_cycles"] == int(float(vela["cycles_total"])) > 0
        assert attrs["npu_sram_bytes"] == pytest.approx(1024 * float(vela["sram_memory_used"]), abs=1)
        assert 0 <= attrs["npu_cpu_operators"] < 5  # the input's and output's (de)quantization at most


@pytest.mark.parametrize("extra, message", [
    (["--max-ram", "lots"], "cannot read size 'lots'"),
    (["--max-ram", "100B"], "--max-ram 100 B is below the 256 B of one input image"),
    (["--max-ram", "0B"], "--max-ram must be > 0"),
    (["--objectives", "accuracy,size,ram,ram"], "--objectives must be accuracy,size, then optionally"),
    (["--npu", "ethos-u99"], "--npu must be one of ethos-u55-32, ethos-u55-64, ethos-u55-128"),
    (["--max-ram", "64KB", "--config", "dynamic.toml"], "the space's only quant is dynamic, which TensorFlow Lite "
                                                        "Micro does not run (--max-ram, the ram objective)"),
])
def test_bad_ram_input_is_one_line_and_exit_2(bar_npz, session_cache, tmp_path, extra, message):
    (tmp_path / "dynamic.toml").write_text('[space]\nstudent = "cnn"\nquant = "dynamic"\n')
    result = run_cli("search", "--dataset", bar_npz, "--trials", 1, "--out", tmp_path / "study", "--cache-dir",
                     session_cache, "--quiet", *extra, cwd=tmp_path)
    assert_user_error(result, message)
