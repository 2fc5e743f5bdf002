"""The ``autocompress`` command: a thin typer layer over the Python API.

Every command parses its options, calls one API function and prints with rich. A
:class:`UserError` becomes ``error: <message>`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from autocompress import __version__
from autocompress.errors import TrainingFailed, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find the smallest compressed image classifier that keeps the accuracy you need.")
console = Console()
errors = Console(stderr=True)
INTERRUPTED = "interrupted: completed trials are saved; rerun the same command to resume"

DataDir = typer.Option(None, "--data-dir", help="Folder with local dataset files (also $AUTOCOMPRESS_DATA_DIR).")
CacheDir = typer.Option(None, "--cache-dir", help="Cache folder (default ~/.cache/autocompress, or $AUTOCOMPRESS_CACHE_DIR).")
PrecisionOpt = typer.Option("auto", "--precision", help="Training precision: auto (bfloat16 mixed precision where the "
                            "processor has native bfloat16, else float32), float32 or bfloat16.")
DatasetArg = typer.Option(..., "--dataset", help="mnist, fashion_mnist, cifar10, cifar100, or a path to an .npz, image folder or archive.")


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
    from autocompress.progress import EpochProgress, progress_bar

    resolve(precision)
    data = load_dataset(dataset, data_dir, cache_dir)
    with progress_bar(console) as progress:
        result = get_teacher(data, cache_dir, epochs=epochs, seed=seed, teacher_path=teacher_path,
                             callbacks=[EpochProgress(progress, f"teacher on {data.name}")], precision=precision)
    table = Table("teacher", "params", "val accuracy", "test accuracy", "train seconds", "cached at")
    table.add_row(result.name, f"{result.params:,}", f"{result.val_accuracy:.4f}", f"{result.test_accuracy:.4f}",
                  f"{result.train_seconds:.0f}", str(result.path))
    console.print(table)


@app.command()
def compress(
    dataset: str = DatasetArg,
    out: Path = typer.Option(..., "--out", help="Folder for model.tflite, model.keras and result.json."),
    student: str = typer.Option("cnn", help="Student architecture: cnn, resnet8, dscnn or a paper-* preset."),
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
    data_dir: Optional[Path] = DataDir, cache_dir: Optional[Path] = CacheDir,
) -> None:
    """Run one configuration: distil -> prune -> quantize, then measure the exported .tflite."""
    from autocompress.api import compress as run_compress
    from autocompress.compress.config import CompressionConfig
    from autocompress.precision import resolve

    resolve(precision)
    config = CompressionConfig(student=student, width=width, temperature=temperature, alpha=alpha, assistant=assistant,
                               sparsity=sparsity, prune_scope=prune_scope, prune_structure=prune_structure,
                               prune_layers=prune_layers, quant=quant, per_channel=per_channel,
                               strip_names=strip_names, epochs=epochs, finetune_epochs=finetune_epochs,
                               seed=seed)
    with console.status(f"compressing: {config.label()}"):
        result = run_compress(config, dataset, out, data_dir=data_dir, cache_dir=cache_dir,
                              teacher_epochs=teacher_epochs, teacher_path=teacher_path, precision=precision)
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
    for note in result.notes:
        console.print(f"note: {note}")
    console.print(f"wrote {result.tflite_path} and {Path(out) / 'result.json'}")


def parse_size(text: Optional[str]) -> Optional[int]:
    """'100KB' -> 102400 bytes (B, KB, MB; 1 KB = 1024 B)."""
    if text is None:
        return None
    import re

    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(B|KB|KIB|MB|MIB|GB|GIB)?\s*", text.upper())
    if not match:
        raise UserError(f"cannot read size {text!r}; write it like 100KB, 0.5MB or 20000B")
    factor = {"B": 1, None: 1, "KB": 1024, "KIB": 1024, "MB": 1024 ** 2, "MIB": 1024 ** 2,
              "GB": 1024 ** 3, "GIB": 1024 ** 3}[match.group(2)]
    return int(float(match.group(1)) * factor)


@app.command()
def search(
    dataset: str = DatasetArg,
    trials: int = typer.Option(30, help="Number of trials the study should hold (resuming adds only the missing ones)."),
    study_name: Optional[str] = typer.Option(None, help="Study name (default: the dataset's name)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Study folder (default: studies/<study-name>)."),
    storage: Optional[str] = typer.Option(None, help="sqlite:///..., postgresql://... or a journal file (default: <out>/study.db)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Search-space TOML (default: studies/<dataset>.toml)."),
    sampler: str = typer.Option("tpe", help="tpe, nsga2, nsga3, random or qmc."),
    seed: Optional[int] = typer.Option(None, help="Sampler seed: a single-worker study with a seed is reproducible."),
    size_metric: str = typer.Option("tflite", help="tflite (bytes you deploy) or gzip."),
    objectives: str = typer.Option("accuracy,size", help="accuracy,size, then optionally latency and/or ram "
                                                         "(TFLite Micro's arena bytes), e.g. accuracy,size,ram."),
    max_size: Optional[str] = typer.Option(None, help="Constraint, e.g. 100KB."),
    max_ram: Optional[str] = typer.Option(None, help="Constraint on TFLite Micro's tensor arena, e.g. 64KB "
                                                     "(files TFLite Micro cannot run are infeasible)."),
    min_accuracy: Optional[float] = typer.Option(None, help="Constraint on validation accuracy, e.g. 0.9."),
    epochs: Optional[int] = typer.Option(None, help="Cap on every trial's training epochs."),
    timeout: Optional[float] = typer.Option(None, help="Stop starting trials after this many seconds."),
    workers: int = typer.Option(1, help="Worker processes sharing the study."),
    trials_per_process: int = typer.Option(10, help="Trials a worker process runs before a fresh one replaces it "
                                                    "(gives back the memory TensorFlow keeps per fit); 0 = never."),
    heartbeat: int = typer.Option(30, help="Seconds between a running trial's heartbeats; a trial silent for 3 is failed and retried."),
    cache_limit: str = typer.Option("4GB", help="Bound on the trained-student and pruned-model caches "
                                                "(least recently used files go first); 0B reuses nothing, "
                                                "not even a repeated configuration's result."),
    multi_fidelity: bool = typer.Option(True, "--multi-fidelity/--full-fidelity",
                                        help="Stop trials after a third of their epochs when they cannot reach the front."),
    teacher_path: Optional[Path] = typer.Option(None, "--teacher", help="Your own saved Keras teacher."),
    teacher_epochs: Optional[int] = typer.Option(None, help="Epochs for the built-in teacher, if it must be trained."),
    precision: str = PrecisionOpt,
    quiet: bool = typer.Option(False, "--quiet", help="No live display."),
    data_dir: Optional[Path] = DataDir, cache_dir: Optional[Path] = CacheDir,
) -> None:
    """Run (or resume) the multi-objective Optuna study and write its Pareto front."""
    from autocompress.search.display import SearchDisplay, front_table
    from autocompress.search.front import front_rows, write_front
    from autocompress.search.settings import SearchSettings
    from autocompress.search.supervisor import run_search

    settings = SearchSettings(
        dataset=dataset, trials=trials, study_name=study_name, out=str(out) if out else None, storage=storage,
        config=str(config) if config else None, sampler=sampler, seed=seed, size_metric=size_metric,
        objectives=tuple(o.strip() for o in objectives.split(",")), max_size=parse_size(max_size),
        max_ram=parse_size(max_ram), min_accuracy=min_accuracy, epochs=epochs, timeout=timeout, workers=workers,
        data_dir=str(data_dir) if data_dir else None, cache_dir=str(cache_dir) if cache_dir else None,
        teacher_path=str(teacher_path) if teacher_path else None, teacher_epochs=teacher_epochs, heartbeat=heartbeat,
        multi_fidelity=multi_fidelity, cache_limit=parse_size(cache_limit), trials_per_process=trials_per_process,
        precision=precision)
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials get our one-line report below

    def report_failure(_, trial) -> None:
        if trial.state == TrialState.FAIL:
            errors.print(f"trial {trial.number} failed: {trial.user_attrs.get('fail_reason', 'see the dashboard')}",
                         markup=False, highlight=False, soft_wrap=True)

    try:
        if quiet:
            study = run_search(settings, callbacks=(report_failure,))
        else:
            with SearchDisplay(console, trials) as display:
                study = run_search(settings, callbacks=(display, report_failure), on_ready=display.on_ready)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (typer would turn it into a bare exit 130)
        errors.print(INTERRUPTED, markup=False)
        raise typer.Exit(130) from None
    _say_if_short(study, settings)
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        console.print("no trial completed (see the study's failed and pruned trials), so there is no front yet")
        return
    paths = write_front(study, settings.location().folder)
    if quiet:
        console.print(front_table(front_rows(study), title=f"Pareto front of {study.study_name}"))
    console.print(f"wrote {paths['csv']}, {paths['json']} and {paths['html']}")


def _say_if_short(study, settings) -> None:
    """A search that ends before the study holds ``--trials`` finished trials says how many, and why."""
    from optuna.trial import TrialState

    from autocompress.search.settings import finished_or_running

    counted = finished_or_running(study)
    running = sum(t.state == TrialState.RUNNING for t in counted)
    finished = sum(t.state.is_finished() for t in counted)
    if finished < settings.trials:
        why = (f"--timeout {settings.timeout:g} s passed" if settings.timeout else
               f"{running} trial(s) still run in a worker that this storage cannot watch" if running else
               "some trials are still queued")
        console.print(f"the study holds {finished} of {settings.trials} finished trials ({why}); "
                      "rerun the same command to add the rest")


@app.command()
def front(study: str = typer.Option(..., "--study", help="Study name."),
          out: Optional[Path] = typer.Option(None, "--study-dir", "--out", help="Study folder (default: studies/<study>)."),
          storage: Optional[str] = typer.Option(None, help="Storage URL, if not the folder's study.db.")) -> None:
    """Print a study's Pareto front and (re)write front.csv, front.json and front.html."""
    from autocompress.search.display import front_table
    from autocompress.search.front import front_rows, write_front
    from autocompress.search.storage import load_study

    loaded, location = load_study(study, out, storage)
    paths = write_front(loaded, location.folder)
    console.print(front_table(front_rows(loaded), title=f"Pareto front of {study}"))
    console.print(f"wrote {paths['csv']}, {paths['json']} and {paths['html']}")


StudyName = typer.Option(..., "--study", help="Study name.")
StudyDir = typer.Option(None, "--study-dir", help="Study folder (default: studies/<study>).")
StorageUrl = typer.Option(None, "--storage", help="Storage URL, if not the study folder's study.db.")


@app.command()
def export(
    study: str = StudyName,
    out: Path = typer.Option(..., "--out", help="Destination folder (created; an earlier export there is replaced)."),
    trial: Optional[int] = typer.Option(None, "--trial", help="Export this trial (any completed one)."),
    pick: Optional[str] = typer.Option(
        None, "--pick", help="A front point: best-accuracy (highest val accuracy, ties: smaller), smallest, or knee "
                             "(furthest above the line joining the front's extremes in normalised (log size, "
                             "accuracy); the smallest if none lies above it)."),
    max_size: Optional[str] = typer.Option(None, "--max-size", help="The most accurate front point of at most this size, e.g. 64KB."),
    min_accuracy: Optional[float] = typer.Option(None, "--min-accuracy", help="The smallest front point with at least this val accuracy, e.g. 0.9."),
    study_dir: Optional[Path] = StudyDir, storage: Optional[str] = StorageUrl,
    dataset: Optional[str] = typer.Option(None, "--dataset", help="The dataset the search used, as a name or path (default: the dataset and --data-dir the search read)."),
    data_dir: Optional[Path] = DataDir, cache_dir: Optional[Path] = CacheDir,
) -> None:
    """Export one model (model.tflite, model.keras, model.json), verified on the test split.

    Choose it with exactly one of --trial, --pick, --max-size or --min-accuracy; sizes are the
    study's size metric. Exits with 1, writing nothing, if the .tflite's test accuracy differs
    from the recorded one by more than 0.1 point.
    """
    from autocompress.export import ExportSettings, Selection, VerificationError, export_model

    settings = ExportSettings(study=study, out=out, study_dir=study_dir, storage=storage, dataset=dataset,
                              data_dir=data_dir, cache_dir=cache_dir,
                              selection=Selection(trial=trial, pick=pick, max_size=parse_size(max_size),
                                                  min_accuracy=min_accuracy))
    try:
        result = export_model(settings)
    except VerificationError as error:
        errors.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    card = result.card
    console.print(f"trial {result.trial} ({card['label']}): {100 * card['val_accuracy']:.2f}% val, "
                  f"{100 * card['test_accuracy_at_export']:.2f}% test (verified), {card['tflite_bytes']:,} bytes")
    console.print(f"wrote {result.folder / 'model.tflite'}, model.keras, model.json and, for TensorFlow Lite Micro, "
                  "model_data.cc, model_data.h and model_ops.h")


@app.command()
def report(study: str = StudyName,
           out: Path = typer.Option(..., "--out", help="The HTML file to write, e.g. report.html."),
           study_dir: Optional[Path] = StudyDir, storage: Optional[str] = StorageUrl) -> None:
    """Write a self-contained HTML report: Pareto front, hypervolume, importances, techniques, front table."""
    from autocompress.report import report as write_report

    console.print(f"wrote {write_report(study, out, study_dir, storage)}")


@app.command()
def dashboard(study: Optional[str] = typer.Option(None, "--study", help="Study name (or give only --storage)."),
              study_dir: Optional[Path] = typer.Option(None, "--study-dir", "--out", help="Study folder (default: studies/<study>)."),
              storage: Optional[str] = StorageUrl,
              host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)."),
              port: int = typer.Option(8080, help="Port to listen on.")) -> None:
    """Serve optuna-dashboard on the study: Pareto front, trial params and attributes, .tflite downloads."""
    from autocompress.dashboard import prepare

    server = prepare(study, study_dir, storage, host, port)
    console.print(f"optuna-dashboard at {server.url} (Ctrl-C to stop)")
    server.run()


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit code 2."""
    try:
        app()
    except (UserError, TrainingFailed) as error:  # a diverged or collapsed training says what to try
        errors.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        errors.print(INTERRUPTED, markup=False)
        sys.exit(130)
