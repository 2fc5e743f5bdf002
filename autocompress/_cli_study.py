"""The commands on a study: ``search``, ``front``, ``export``, ``report``, ``dashboard``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from autocompress._cli_base import (INTERRUPTED, CacheDir, DataDir, DatasetArg, InputOffset, InputScale, ModelPath, NpuOpt,
                                    PrecisionOpt, app, console, errors, parse_size)


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
                                                    "(gives back the memory TensorFlow keeps per fit; repeats, which "
                                                    "train nothing, do not count); 0 = never."),
    heartbeat: int = typer.Option(30, help="Seconds between a running trial's heartbeats; a trial silent for 3 is failed and retried."),
    cache_limit: str = typer.Option("4GB", help="Bound on the trained-student and pruned-model caches "
                                                "(least recently used files go first); 0B reuses nothing, "
                                                "not even a repeated configuration's result."),
    multi_fidelity: bool = typer.Option(True, "--multi-fidelity/--full-fidelity",
                                        help="Stop trials after a third of their epochs when they cannot reach the front."),
    teacher_path: Optional[Path] = typer.Option(None, "--teacher", help="Your own saved Keras teacher."),
    teacher_epochs: Optional[int] = typer.Option(None, help="Epochs for the built-in teacher, if it must be trained."),
    precision: str = PrecisionOpt,
    npu: Optional[str] = NpuOpt,
    model_path: Optional[Path] = ModelPath, input_scale: float = InputScale, input_offset: float = InputOffset,
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
        precision=precision, npu=npu, model_path=str(model_path.resolve()) if model_path else None,
        input_scale=input_scale, input_offset=input_offset)
    import optuna
    from optuna.trial import TrialState

    from autocompress.search.record import TrialRecord

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials get our one-line report below

    def report_failure(_, trial) -> None:
        if trial.state == TrialState.FAIL:
            errors.print(f"trial {trial.number} failed: {TrialRecord.of(trial).fail_reason or 'see the dashboard'}",
                         markup=False, highlight=False, soft_wrap=True)

    try:
        if quiet:
            study = run_search(settings, callbacks=(report_failure,))
        else:
            with SearchDisplay(console, trials) as display:
                study = run_search(settings, callbacks=(display, report_failure), on_ready=display.on_ready,
                                   on_activity=display.activity)
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
    front: bool = typer.Option(False, "--front", help="Every front point (up to --max-size, when given), each in OUT/trial-N, beside front.csv and front.json."),
    study_dir: Optional[Path] = StudyDir, storage: Optional[str] = StorageUrl,
    dataset: Optional[str] = typer.Option(None, "--dataset", help="The dataset the search used, as a name or path (default: the dataset and --data-dir the search read)."),
    data_dir: Optional[Path] = DataDir, cache_dir: Optional[Path] = CacheDir,
) -> None:
    """Export one model (model.tflite, model.keras, model.json), verified on the test split.

    Choose it with exactly one of --trial, --pick, --max-size or --min-accuracy, or take every front
    point with --front; sizes are the study's size metric. Exits with 1, writing nothing, if a
    .tflite's test accuracy differs from the recorded one by more than 0.1 point.
    """
    from autocompress.export import ExportSettings, Selection, VerificationError, export_front, export_model

    settings = ExportSettings(study=study, out=out, study_dir=study_dir, storage=storage, dataset=dataset,
                              data_dir=data_dir, cache_dir=cache_dir,
                              selection=Selection(trial=trial, pick=pick, max_size=parse_size(max_size),
                                                  min_accuracy=min_accuracy, front=front))
    try:
        results = export_front(settings) if front else [export_model(settings)]
    except VerificationError as error:
        errors.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    for result in results:
        card = result.card
        console.print(f"trial {result.trial} ({card['label']}): {100 * card['val_accuracy']:.2f}% val, "
                      f"{100 * card['test_accuracy_at_export']:.2f}% test (verified), {card['tflite_bytes']:,} bytes")
    where = f"{out}/trial-N/" if front else f"{results[0].folder}/"
    console.print(f"wrote {where}model.tflite, model.keras, model.json and, for TensorFlow Lite Micro, "
                  "model_data.cc, model_data.h and model_ops.h" + (f"; {out}/front.csv and front.json"
                                                                   if front else ""))


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
