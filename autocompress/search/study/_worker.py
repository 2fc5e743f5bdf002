"""The worker process: its one argument, its preparation, its exit codes."""

from __future__ import annotations

import math
import os
import pickle
import signal
import sys
from pathlib import Path

import optuna

from autocompress.errors import UserError
from autocompress.search.settings import EXIT_REPLACE_ME, SearchSettings, WorkerArgs
from autocompress.search.study._identity import create_or_resume
from autocompress.search.study._loop import work
from autocompress.search.study._native import die_with_parent
from autocompress.search.study._objective import Objective


def prepare(settings: SearchSettings, slot: int = 0, space_file: Path | None = None):
    """Load the data, the study and the context (the teacher loads when a trial first needs it).

    ``space_file``: the run's space, pickled by the supervisor (without it, the space ``settings``
    name is read). ``slot`` seeds a seeded sampler (:func:`create_or_resume`).
    """
    from autocompress.api import make_context
    from autocompress.own_model import InputScaling
    from autocompress.data import load_dataset

    dataset = load_dataset(settings.dataset, settings.data_dir, settings.cache_dir)
    image = math.prod(dataset.input_shape)
    if settings.max_ram is not None and settings.max_ram < image:
        raise UserError(f"--max-ram {settings.max_ram} B is below the {image} B of one input image, which every "
                        "model's TFLite Micro arena holds; give a larger budget, e.g. 64KB")
    known = pickle.loads(space_file.read_bytes()) if space_file else None
    study, space = create_or_resume(settings, dataset, known, slot)
    context = make_context(dataset, settings.cache_dir, teacher_epochs=settings.teacher_epochs,
                           teacher_path=settings.teacher_path, precision=settings.precision, npu=settings.npu,
                           model_path=settings.model_path,
                           scaling=InputScaling(settings.input_scale, settings.input_offset))
    context.models_dir = settings.location().folder / "cache"  # the study's students and pruned models
    return study, space, context


def worker_main(arguments: str) -> None:
    """A worker process started by :func:`autocompress.search.supervisor.run_search` with one
    :class:`WorkerArgs` as JSON: prepare, then run trials; exit 0 when the study is done,
    ``EXIT_REPLACE_ME`` after ``trials_per_process`` trials, or 2 with the one-line error written
    to :meth:`WorkerArgs.error_file`. Optuna logs at the supervisor's ``verbosity``."""
    die_with_parent()
    signal.signal(signal.SIGTERM, _interrupted)  # like Ctrl-C: the running trial is recorded as failed
    args = WorkerArgs.from_json(arguments)
    optuna.logging.set_verbosity(args.verbosity)
    settings = args.settings
    try:
        study, space, context = prepare(settings, args.slot, WorkerArgs.space_file(args.run_folder))
        report = _appender(args.activity_file())
        if space.distils():
            from autocompress.progress import EpochLines

            context.get_teacher([EpochLines(report, "training the teacher")])  # here, once, before the first trial
        more = work(study, Objective(settings, space, context, settings.location(), report), settings.trials,
                    args.deadline, settings.trials_per_process or None, args.run_started)
    except UserError as error:
        args.error_file().write_text(str(error))
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the supervisor reports it
        sys.exit(130)
    _exit_at_once(EXIT_REPLACE_ME if more else 0)


def _appender(path: Path):
    """A function that appends one line to ``path`` (the supervisor reads it as it grows)."""

    def append(line: str) -> None:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line.replace("\n", " ") + "\n")

    return append


def _exit_at_once(code: int) -> None:
    """Exit without Python's and TensorFlow's teardown (about a second of CPU after training; see
    docs/BENCHMARKS.md, "Test-suite time"). Nothing is lost: every trial is already in the storage
    and its files in place, as they must be for a worker that ``kill -9`` may stop at any moment."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _interrupted(signum, frame):
    raise KeyboardInterrupt
