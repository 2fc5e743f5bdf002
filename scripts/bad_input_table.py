"""Run every bad input of docs/RELIABILITY.md through the real CLI and print its table.

    python scripts/bad_input_table.py > /tmp/table.md

Each row: what is wrong, the command, the exit code and the one line the user sees. The same
cases are asserted by the tests named in the last column.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def files(root: Path) -> dict[str, Path]:
    """Small broken inputs, written to ``root``."""
    made = {}
    made["truncated.npz"] = root / "truncated.npz"
    made["truncated.npz"].write_bytes(b"PK\x03\x04 not really a zip")
    x = np.zeros((6, 8, 8), np.uint8)
    np.savez(root / "one_class.npz", x_train=x, y_train=np.zeros(6), x_test=x, y_test=np.zeros(6))
    made["one_class.npz"] = root / "one_class.npz"
    np.savez(root / "bad_labels.npz", x_train=x, y_train=np.array([0, 1, 0, 1, 0, -3]), x_test=x, y_test=np.zeros(6))
    made["bad_labels.npz"] = root / "bad_labels.npz"
    np.savez(root / "no_test.npz", x_train=x, y_train=np.array([0, 1] * 3))
    made["no_test.npz"] = root / "no_test.npz"
    idx = root / "idx"
    idx.mkdir()
    (idx / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03garbage"))
    for name in ("train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (idx / name).write_bytes(gzip.compress(b"\x00\x00\x08\x01"))
    made["idx"] = idx
    empty = root / "images"
    for split in ("train", "test"):
        (empty / split / "cat").mkdir(parents=True)
        (empty / split / "dog").mkdir(parents=True)
    made["images"] = empty
    (root / "space_unknown.toml").write_text("[space]\nwidht = [0.5]\n")
    (root / "space_range.toml").write_text("[space]\nsparsity = { low = 0.8, high = 0.2 }\n")
    (root / "space_empty.toml").write_text("[space]\nquant = []\n")
    (root / "teacher.keras").write_bytes(b"not a model")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras

    layers = tf_keras.layers
    lambda_model = tf_keras.Sequential([tf_keras.Input((8, 8, 1)), layers.Lambda(lambda t: t * 2), layers.Flatten(),
                                        layers.Dense(2)])
    lambda_model.save(root / "lambda.h5")
    return made


def cases(root: Path, bars: str) -> list[tuple[str, list[str], str]]:
    f = files(root)
    study = ["--study", "nosuch", "--study-dir", str(root / "nosuch")]
    return [
        ("unknown dataset name", ["teacher", "--dataset", "imagenet"], "test_data.py::test_unknown_name_and_missing_paths"),
        ("missing dataset file", ["teacher", "--dataset", str(root / "missing.npz")], "test_data.py::test_unknown_name_and_missing_paths"),
        ("truncated / corrupt npz", ["teacher", "--dataset", str(f["truncated.npz"])], "test_data.py::test_bad_npz_files"),
        ("npz without test split", ["teacher", "--dataset", str(f["no_test.npz"])], "test_data.py::test_bad_npz_contents"),
        ("labels out of range", ["teacher", "--dataset", str(f["bad_labels.npz"])], "test_data.py::test_bad_npz_contents"),
        ("fewer than 2 classes", ["teacher", "--dataset", str(f["one_class.npz"])], "test_data.py::test_bad_npz_contents"),
        ("corrupt IDX file", ["teacher", "--dataset", str(f["idx"])], "test_data.py::test_bad_idx_files"),
        ("empty class folders", ["teacher", "--dataset", str(f["images"])], "test_data.py::test_bad_image_folders"),
        ("teacher file that is not a model", ["teacher", "--dataset", bars, "--teacher", str(root / "teacher.keras")], "test_reliability.py::test_bad_teacher_file"),
        ("teacher with a Lambda layer", ["teacher", "--dataset", bars, "--teacher", str(root / "lambda.h5")], "test_user_teacher.py::test_a_lambda_layer_is_refused_before_its_code_can_run"),
        ("sparsity outside [0, 1)", ["compress", "--dataset", bars, "--out", str(root / "o"), "--sparsity", "1.5"], "test_compress.py::test_invalid_configurations_fail_before_any_training"),
        ("temperature <= 0", ["compress", "--dataset", bars, "--out", str(root / "o"), "--temperature", "0", "--alpha", "0.5"], "test_compress.py::test_invalid_configurations_fail_before_any_training"),
        ("alpha outside [0, 1]", ["compress", "--dataset", bars, "--out", str(root / "o"), "--alpha", "1.5"], "test_compress.py::test_invalid_configurations_fail_before_any_training"),
        ("2:4 with another sparsity", ["compress", "--dataset", bars, "--out", str(root / "o"), "--prune-structure", "2:4", "--sparsity", "0.7"], "test_compress.py::test_invalid_configurations_fail_before_any_training"),
        ("unknown quantization mode", ["compress", "--dataset", bars, "--out", str(root / "o"), "--quant", "int4"], "test_compress.py::test_invalid_configurations_fail_before_any_training"),
        ("unknown NPU configuration", ["search", "--dataset", bars, "--npu", "ethos-u99"], "test_micro.py::test_bad_ram_input_is_one_line_and_exit_2"),
        ("unknown sampler", ["search", "--dataset", bars, "--sampler", "annealing"], "test_search.py::test_bad_search_input_is_one_line_and_exit_2"),
        ("trials <= 0", ["search", "--dataset", bars, "--trials", "0"], "test_search.py::test_bad_search_input_is_one_line_and_exit_2"),
        ("malformed storage URL", ["search", "--dataset", bars, "--storage", "not a url://x"], "test_search.py::test_bad_search_input_is_one_line_and_exit_2"),
        ("unreachable database", ["search", "--dataset", bars, "--storage", "postgresql://nobody@127.0.0.1:9/none"], "test_search.py::test_bad_search_input_is_one_line_and_exit_2"),
        ("unreadable size", ["search", "--dataset", bars, "--max-size", "lots"], "test_search.py::test_bad_search_input_is_one_line_and_exit_2"),
        ("config: unknown key", ["search", "--dataset", bars, "--config", str(root / "space_unknown.toml")], "test_search.py::test_malformed_config_files_are_user_errors"),
        ("config: low > high", ["search", "--dataset", bars, "--config", str(root / "space_range.toml")], "test_search.py::test_malformed_config_files_are_user_errors"),
        ("config: empty choices", ["search", "--dataset", bars, "--config", str(root / "space_empty.toml")], "test_search.py::test_malformed_config_files_are_user_errors"),
        ("unknown study (front)", ["front", *study], "test_export.py (unknown study)"),
        ("unknown study (export)", ["export", *study, "--pick", "knee", "--out", str(root / "e")], "test_export.py (unknown study)"),
        ("unknown study (report)", ["report", *study, "--out", str(root / "r.html")], "test_report.py (unknown study)"),
    ]


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="bad-inputs-"))
    x = np.random.default_rng(0).integers(0, 255, (40, 8, 8), dtype=np.uint8)
    y = np.arange(40) % 2
    np.savez(root / "bars.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    print("| bad input | command | exit | message | test |")
    print("| --- | --- | --- | --- | --- |")
    for what, args, test in cases(root, str(root / "bars.npz")):
        done = subprocess.run([sys.executable, "-m", "autocompress", *args], capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        shown = " ".join(args).replace(str(root) + "/", "")
        message = lines[-1] if lines else "(no error line)"
        print(f"| {what} | `autocompress {shown}` | {done.returncode} | {message.replace(str(root) + '/', '').replace('|', '/')} | {test} |",
              flush=True)


if __name__ == "__main__":
    main()
