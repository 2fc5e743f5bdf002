"""The commands that run one step: ``datasets``, ``teacher``, ``compress``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from autocompress import __version__
from autocompress._cli_base import (CacheDir, DataDir, DatasetArg, InputOffset, InputScale, ModelPath, NpuOpt,
                                    PrecisionOpt, app, console)


def _version(value: bool) -> None:
    if value:
        console.print(f"autocompress {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Distil, prune and quantize image classifiers; search the trade-off with Optuna."""


@app.command()
def datasets(data_dir: Optional[Path] = DataDir) -> None:
    """List the datasets autocompress knows and where each was found."""
    from autocompress.api import list_datasets

    table = Table("dataset", "source")
    for name, path in list_datasets(data_dir).items():
        table.add_row(name, str(path) if path else "not found locally: would be downloaded by keras.datasets")
    console.print(table)
    console.print("Any .npz (x_train/y_train/x_test/y_test), IDX folder, CIFAR batch folder or image folder "
                  "(ROOT/{train,test}/<class>/*.png|jpg, also as .tar.gz) works as --dataset PATH.")


@app.command()
def teacher(dataset: str = DatasetArg, epochs: Optional[int] = typer.Option(None, help="Training epochs (default: 10; 30 for colour data under 10,000 images)."),
            seed: int = typer.Option(0, help="Random seed."),
            teacher_path: Optional[Path] = typer.Option(None, "--teacher", help="Use your own saved Keras model instead."),
            precision: str = PrecisionOpt,
            data_dir: Optional[Path] = DataDir, cache_dir: Optional[Path] = CacheDir) -> None:
    """Train the teacher once (or load it from the cache) and print its accuracy."""
    from autocompress.api import get_teacher
    from autocompress.data import load_dataset
    from autocompress.precision import resolve
    from autocompress.progress import training_display

    resolve(precision)
    data = load_dataset(dataset, data_dir, cache_dir)
    with training_display(console, f"teacher on {data.name}") as shown:
        result = get_teacher(data, cache_dir, epochs=epochs, seed=seed, teacher_path=teacher_path,
                             callbacks=[shown], precision=precision)
    table = Table("teacher", "params", "val accuracy", "test accuracy", "train seconds", "cached at")
    table.add_row(result.name, f"{result.params:,}", f"{result.val_accuracy:.4f}", f"{result.test_accuracy:.4f}",
                  f"{result.train_seconds:.0f}", str(result.path))
    console.print(table)


@app.command()
def compress(
    dataset: str = DatasetArg,
    out: Path = typer.Option(..., "--out", help="Folder for model.tflite, model.keras and result.json."),
    student: Optional[str] = typer.Option(None, help="Student: cnn, resnet8, dscnn, mobilenetv2, a paper-* preset, model "
                                                     "(your --model; the default with --model) or package.module:function."),
    width: float = typer.Option(0.5, help="Student width multiplier."),
    temperature: float = typer.Option(4.0, help="Distillation temperature T (> 0)."),
    alpha: float = typer.Option(1.0, help="Weight of the label loss; 1 = plain training, < 1 distils."),
    assistant: bool = typer.Option(False, "--assistant/--no-assistant", help="Distil through a teacher assistant."),
    sparsity: float = typer.Option(0.0, help="Pruning sparsity in [0, 1); 0 = no pruning."),
    prune_scope: str = typer.Option("local", help="global or local."),
    prune_structure: str = typer.Option("unstructured", help="unstructured, 2:4 or channel."),
    prune_layers: str = typer.Option("conv", help="conv, dense or all."),
    quant: str = typer.Option("none", help="none, dynamic, float16, int8 or qat."),
    per_channel: bool = typer.Option(True, "--per-channel/--per-tensor",
                                     help="int8 weight scales per output channel, or one per tensor (int8 PTQ only)."),
    strip_names: bool = typer.Option(False, "--strip-names/--keep-names",
                                     help="Drop tensor names and signatures from the .tflite (smaller; TFLite Micro)."),
    epochs: int = typer.Option(10, help="Student training epochs."),
    finetune_epochs: int = typer.Option(2, help="Fine-tuning epochs after pruning / for QAT."),
    seed: int = typer.Option(0, help="Random seed."),
    teacher_path: Optional[Path] = typer.Option(None, "--teacher", help="Your own saved Keras teacher."),
    teacher_epochs: Optional[int] = typer.Option(None, help="Epochs for the built-in teacher, if it must be trained."),
    precision: str = PrecisionOpt,
    npu: Optional[str] = NpuOpt,
    model_path: Optional[Path] = ModelPath, input_scale: float = InputScale, input_offset: float = InputOffset,
    data_dir: Optional[Path] = DataDir, cache_dir: Optional[Path] = CacheDir,
) -> None:
    """Run one configuration: distil -> prune -> quantize, then measure the exported .tflite."""
    from autocompress.api import compress as run_compress
    from autocompress.compress.config import CompressionConfig
    from autocompress.own_model import OWN_MODEL, InputScaling
    from autocompress.precision import resolve

    resolve(precision)
    scaling = InputScaling(input_scale, input_offset)
    student = student or (OWN_MODEL if model_path else "cnn")
    config = CompressionConfig(student=student, width=width, temperature=temperature, alpha=alpha, assistant=assistant,
                               sparsity=sparsity, prune_scope=prune_scope, prune_structure=prune_structure,
                               prune_layers=prune_layers, quant=quant, per_channel=per_channel,
                               strip_names=strip_names, epochs=epochs, finetune_epochs=finetune_epochs,
                               seed=seed)
    with console.status(f"compressing: {config.label()}"):
        result = run_compress(config, dataset, out, data_dir=data_dir, cache_dir=cache_dir,
                              teacher_epochs=teacher_epochs, teacher_path=teacher_path, precision=precision,
                              npu=npu, model_path=model_path, scaling=scaling)
    table = Table("configuration", "val acc", "test acc", "bytes", "gzip bytes", "params (non-zero)",
                  "efficiency %/KB", "latency ms", "seconds")
    table.add_row(config.label(), f"{result.val_accuracy:.4f}", f"{result.test_accuracy:.4f}",
                  f"{result.tflite_bytes:,}", f"{result.gzip_bytes:,}", f"{result.params:,} ({result.nonzero_params:,})",
                  f"{result.efficiency:.2f}", f"{result.latency_ms:.3f}", f"{sum(result.stage_seconds.values()):.0f}")
    console.print(table)
    micro = (f"arena {result.arena_bytes:,} bytes, same class as LiteRT on {100 * result.tflm_agreement:.1f}% of "
             "the validation images checked" if result.arena_bytes is not None
             else f"cannot run it ({result.tflm_error})")
    console.print(f"TensorFlow Lite Micro: {micro}; {result.macs:,} MACs per image")
    if result.npu is not None:
        console.print(f"{result.npu} (Vela's estimate): " + (
            f"{result.npu_ms:.3f} ms, {result.npu_cycles:,} cycles, {result.npu_sram_bytes:,} bytes of SRAM, "
            f"{result.npu_cpu_operators} operators left to the CPU" if result.npu_error is None else result.npu_error))
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"wrote {result.tflite_path} and {Path(out) / 'result.json'}")
