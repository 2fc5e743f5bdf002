"""bfloat16 mixed-precision training: float32 models downstream, separate cache entries, the --precision flag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from autocompress import precision
from autocompress._tf import keras
from autocompress.compress import pipeline
from autocompress.compress.config import CompressionConfig
from autocompress.errors import UserError

from helpers import assert_user_error, run_cli

CONFIG = CompressionConfig(student="cnn", width=0.5, epochs=2, finetune_epochs=1, batch_size=32, quant="int8",
                           sparsity=0.3, prune_structure="channel")


@pytest.fixture(scope="module")
def precision_runs(bar_dataset, tmp_path_factory):
    """The same configuration trained in float32 and in bfloat16 (separate caches, one study folder each)."""
    out = {}
    for choice in ("float32", "bfloat16"):
        root = tmp_path_factory.mktemp(choice)
        context = pipeline.Context(bar_dataset, root / "cache", precision=choice)
        out[choice] = (context, pipeline.run(CONFIG, context, root / "run"))
    return out


def _tensor_types(path: str) -> set[str]:
    interpreter = Interpreter(model_path=path)
    return {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}


@pytest.mark.parametrize("choice", ["float32", "bfloat16"])
def test_each_precision_trains_a_float32_model_and_a_file_without_bfloat16(precision_runs, choice):
    context, result = precision_runs[choice]
    assert result.precision == choice
    student = next(Path(context.model_cache, "students").glob("*.keras"))
    for path in (student, Path(result.keras_path)):
        model = keras.models.load_model(path, compile=False)
        assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}, path
        assert {w.dtype.name for w in model.weights} == {"float32"}, path
    types = _tensor_types(result.tflite_path)
    assert "bfloat16" not in types and "int8" in types
    assert result.val_accuracy > 0.6  # it learnt the bars either way


def test_a_bfloat16_student_trains_in_bfloat16_and_has_its_own_cache_key(bar_dataset, tmp_path):
    float32 = pipeline.Context(bar_dataset, tmp_path, precision="float32")
    bfloat16 = pipeline.Context(bar_dataset, tmp_path, precision="bfloat16")
    assert pipeline.student_key(CONFIG, float32, None) != pipeline.student_key(CONFIG, bfloat16, None)
    with precision.policy("bfloat16"):
        from autocompress.models import build_model

        model = build_model("cnn", bar_dataset.input_shape, bar_dataset.num_classes, width=0.5)
    assert model.get_layer("s0a_conv").compute_dtype == "bfloat16"
    assert model.get_layer("logits").compute_dtype == "float32"  # logits (and so the losses) stay float32
    assert keras.mixed_precision.global_policy().name == "float32"  # the policy is restored after the block
    rebuilt = precision.as_float32(model)
    assert rebuilt.get_layer("s0a_conv").compute_dtype == "float32"
    x = bar_dataset.x_val[:8].astype(np.float32)
    assert np.allclose(rebuilt(x), model(x), atol=0.1)  # same weights; bfloat16 rounds the first


def test_auto_follows_the_processors_bfloat16_flags(tmp_path):
    flags = Path("/proc/cpuinfo").read_text()
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    assert precision.resolve("auto") == ("bfloat16" if native else "float32")
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert precision.native_bfloat16.__wrapped__(str(fake))
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2\n")
    assert not precision.native_bfloat16.__wrapped__(str(fake))
    with pytest.raises(UserError, match="precision must be one of auto, float32, bfloat16"):
        precision.resolve("half")


@pytest.mark.parametrize("command", ["compress", "search", "teacher"])
def test_a_bad_precision_is_one_line_and_exit_2(bar_npz, tmp_path, command):
    extra = {"compress": ["--out", tmp_path / "o"], "search": ["--out", tmp_path / "s"], "teacher": []}[command]
    result = run_cli(command, "--dataset", bar_npz, "--precision", "half", *extra, "--cache-dir", tmp_path / "c")
    assert_user_error(result, "precision must be one of auto, float32, bfloat16")


def test_auto_times_each_architecture_once_and_trains_it_in_the_faster_precision(bar_dataset, tmp_path):
    from autocompress.models import build_model

    builds = []

    def build():
        builds.append(keras.mixed_precision.global_policy().name)
        return build_model("cnn", bar_dataset.input_shape, bar_dataset.num_classes, width=0.5)

    assert precision.for_model("float32", build, "cnn x0.5", 32, tmp_path) == "float32" and builds == []
    assert precision.for_model("bfloat16", build, "cnn x0.5", 32, tmp_path) == "bfloat16" and builds == []
    chosen = precision.for_model("auto", build, "cnn x0.5", 32, tmp_path)
    timings = tmp_path / precision.TIMINGS
    if precision.resolve("auto") == "float32":  # no native bfloat16: nothing to time
        assert chosen == "float32" and builds == [] and not timings.exists()
        return
    assert builds == ["float32", "mixed_bfloat16"]  # one model built under each policy, and timed
    (key, seconds), = json.loads(timings.read_text()).items()
    assert "cnn x0.5 | batch 32" in key and all(s > 0 for s in seconds.values())
    assert chosen == min(seconds, key=seconds.get)
    assert precision.for_model("auto", build, "cnn x0.5", 32, tmp_path) == chosen and len(builds) == 2  # remembered
    slower = "float32" if chosen == "bfloat16" else "bfloat16"  # as if another processor had timed it the other way
    timings.write_text(json.dumps({key: {chosen: 2.0, slower: 1.0}}))
    assert precision.for_model("auto", build, "cnn x0.5", 32, tmp_path) == slower
    context = pipeline.Context(bar_dataset, tmp_path, precision="auto")  # the pipeline asks the same question
    assert pipeline.student_precision(CONFIG, context) in ("float32", "bfloat16")
    assert any(f"cnn x0.5 on {bar_dataset.input_shape} | batch 32" in k for k in json.loads(timings.read_text()))
