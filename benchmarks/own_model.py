"""Issue 17's benchmark: a user's own Keras 3 Fashion-MNIST classifier, compressed by autocompress.

    python benchmarks/own_model.py --data-dir ../shared/datasets --out runs/own-model --trials 10

1. Trains the README's "Your own model" classifier (TensorFlow's tutorial CNN: two convolutions and
   a dense layer, 225K parameters) with Keras 3 and saves it, as a user does.
2. ``autocompress compress --model`` of it whole, as float32: its own test accuracy and float bytes,
   measured on that file.
3. ``autocompress search --model`` (the built-in ``studies/model.toml``), then: the best test accuracy
   of a front file within 10% of the float bytes, and the smallest front file within 3 points.
4. A MobileNet-style Keras 3 model (SeparableConv2D, residual Add, Concatenate) through
   ``compress --model`` with half its channels removed, distilled from itself, int8.

Prints markdown (each step's command and result).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def _cli(*args) -> None:
    command = [sys.executable, "-m", "autocompress", *map(str, args)]
    print(f"\n`{' '.join(command[2:])}`")
    started = time.time()
    subprocess.run(command, check=True, capture_output=True, text=True)
    print(f"({time.time() - started:.0f} s)")


def _train(build, data, path: Path, epochs: int) -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = build(keras, data)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=128, verbose=0)
    model.save(path)
    print(f"trained {path.name}: {model.count_params():,} parameters, {epochs} epochs")


def tutorial_cnn(keras, data):
    """The README's example (TensorFlow's Fashion-MNIST tutorial CNN)."""
    L = keras.layers
    return keras.Sequential([
        keras.Input(data.input_shape), L.Rescaling(1 / 255),
        L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(), L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(),
        L.Flatten(), L.Dense(128, activation="relu"), L.Dense(data.num_classes)])


def mobilenet_style(keras, data):
    """Separable convolutions, a residual add and a concatenation, as MobileNet-style nets have."""
    L = keras.layers
    inputs = keras.Input(data.input_shape)
    x = L.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(x)))
    y = L.ReLU()(L.BatchNormalization()(L.SeparableConv2D(32, 3, padding="same", use_bias=False)(x)))
    x = L.Add()([x, y])
    z = L.ReLU()(L.BatchNormalization()(L.SeparableConv2D(32, 3, strides=2, padding="same", use_bias=False)(x)))
    x = L.Concatenate()([z, L.ReLU()(L.Conv2D(32, 1)(L.MaxPooling2D()(x)))])
    x = L.ReLU()(L.BatchNormalization()(L.SeparableConv2D(96, 3, strides=2, padding="same", use_bias=False)(x)))
    return keras.Model(inputs, L.Dense(data.num_classes)(L.GlobalAveragePooling2D()(x)), name="mobilenet_style")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--out", type=Path, default=Path("runs/own-model"))
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5, help="epochs the user trains each model")
    args = parser.parse_args()
    from autocompress import load_dataset

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset("fashion_mnist", args.data_dir)
    common = ("--dataset", "fashion_mnist", "--data-dir", args.data_dir, "--cache-dir", out / "cache")
    mine = out / "my_model.keras"
    if not mine.exists():
        _train(tutorial_cnn, data, mine, args.epochs)
    _cli("compress", *common, "--model", mine, "--quant", "none", "--out", out / "float")
    whole = json.loads((out / "float" / "result.json").read_text())
    print(f"its float32 file: {whole['tflite_bytes']:,} B, {100 * whole['test_accuracy']:.2f}% test")

    _cli("search", *common, "--model", mine, "--trials", args.trials, "--study-name", "own-fashion",
         "--out", out / "study", "--quiet")
    import optuna

    from autocompress.search.front import front_rows

    study = optuna.load_study(study_name="own-fashion", storage=f"sqlite:///{out / 'study' / 'study.db'}")
    rows = sorted(front_rows(study), key=lambda row: row["tflite_bytes"])
    print("\n| trial | configuration | test acc | bytes | arena |\n| --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['trial']} | {row['label']} | {100 * row['test_accuracy']:.2f}% | {row['tflite_bytes']:,} | "
              f"{row.get('arena_bytes') or '-'} |")
    tenth = [r for r in rows if r["tflite_bytes"] <= 0.1 * whole["tflite_bytes"]]
    if tenth:
        best = max(tenth, key=lambda r: r["test_accuracy"])
        print(f"\nbest within 10% of the float bytes: {100 * best['test_accuracy']:.2f}% at {best['tflite_bytes']:,} B "
              f"({100 * (best['test_accuracy'] - whole['test_accuracy']):+.2f} points)")
    close = [r for r in rows if r["test_accuracy"] >= whole["test_accuracy"] - 0.03]
    if close:
        small = min(close, key=lambda r: r["tflite_bytes"])
        print(f"smallest within 3 points: {small['tflite_bytes']:,} B, {100 * small['test_accuracy']:.2f}% "
              f"({small['tflite_bytes'] / whole['tflite_bytes']:.1%} of the float bytes)")

    mobile = out / "mobilenet_style.keras"
    if not mobile.exists():
        _train(mobilenet_style, data, mobile, args.epochs)
    for name, flags in {"mobile-int8": ("--quant", "int8"),
                        "mobile-channel": ("--sparsity", 0.5, "--prune-structure", "channel", "--prune-layers", "all",
                                           "--alpha", 0.5, "--finetune-epochs", 2, "--quant", "int8")}.items():
        _cli("compress", *common, "--model", mobile, *flags, "--out", out / name)
        result = json.loads((out / name / "result.json").read_text())
        print(f"{name}: {result['tflite_bytes']:,} B, {100 * result['test_accuracy']:.2f}% test, "
              f"{result['params']:,} parameters, arena {result.get('arena_bytes')}")


if __name__ == "__main__":
    main()
