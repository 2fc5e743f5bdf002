"""Run a search in worker processes, replaced every ``trials_per_process`` trials.

tf-keras keeps memory after every ``model.fit`` that ``clear_session``, ``gc`` and
``malloc_trim`` do not give back (keras-team/tf-keras#286; measured by ``benchmarks/fit_memory.py``
in docs/BENCHMARKS.md); over 100 trials of several fits each that is gigabytes. So trials run in worker processes
that exit after a few trials and are replaced by fresh ones, while this supervising process,
which never imports TensorFlow, watches the study: it reports each finished trial to the
callbacks (the live display) and turns a worker's error into the same :class:`UserError`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import optuna

from autocompress.cache import scratch_folder, sweep_temporaries
from autocompress.data import dataset_name
from autocompress.errors import UserError
from autocompress.search import storage as storage_mod
from autocompress.search.settings import EXIT_REPLACE_ME, SearchSettings, WorkerArgs

POLL_SECONDS = 1.0
WORKER_CODE = "import sys; from autocompress.search.study import worker_main; worker_main(sys.argv[1])"


class _Worker:
    """One worker process. ``run_folder`` holds the run's space and each worker's one-line error."""

    def __init__(self, settings: SearchSettings, started: float, deadline: float | None, slot: int, run_folder: Path):
        self.slot = slot
        args = WorkerArgs(settings, started, deadline, slot, str(run_folder), optuna.logging.get_verbosity())
        self.error_file, self.activity_file = args.error_file(), args.activity_file()
        self.error_file.unlink(missing_ok=True)
        self.activity_file.unlink(missing_ok=True)
        self.activity_read = 0
        self.process = subprocess.Popen([sys.executable, "-c", WORKER_CODE, args.to_json()], env=os.environ.copy())

    def error(self, code: int) -> UserError:
        if self.error_file.exists():
            return UserError(self.error_file.read_text())
        return UserError(f"a search worker stopped with exit code {code} (its output is above); "
                         "rerun the same command to resume the study")

    def new_activity(self) -> list[str]:
        """The whole lines the worker appended to its activity file since the last call."""
        try:
            with open(self.activity_file, "rb") as f:
                f.seek(self.activity_read)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[:data.rfind(b"\n") + 1]
        self.activity_read += len(complete)
        return complete.decode("utf-8", errors="replace").splitlines()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait()


def run_search(settings: SearchSettings, callbacks: tuple = (), on_ready: Callable | None = None,
               on_activity: Callable[[int, str], None] | None = None) -> optuna.Study:
    """Create or resume the study and run it to ``settings.trials`` trials in ``settings.workers``
    worker processes. ``callbacks`` (Optuna's ``(study, frozen_trial)``) hear of every trial that
    finishes; ``on_ready(study)`` is called once the study exists, before its first trial ends;
    ``on_activity(slot, line)`` hears each epoch a worker trains (the teacher's, a student's).

    The space is read here, once: every worker of the run (replacements too) searches it, so editing
    the TOML meanwhile changes nothing. The first worker creates the study and trains the teacher
    when the space distils; the other workers start when its first trial runs.
    """
    # what a user may mistype fails here, at once, not after a worker has imported TensorFlow
    space = settings.space(dataset_name(settings.dataset, settings.data_dir))
    location = settings.location()
    watcher = _Watcher(settings, callbacks, on_ready)
    watcher.backend = storage_mod.open_storage(location, settings.heartbeat)
    location.folder.mkdir(parents=True, exist_ok=True)
    sweep_temporaries(location.folder)  # what a killed run was writing
    started = time.time()
    deadline = started + settings.timeout if settings.timeout else None
    with scratch_folder("run") as run_folder, _sigterm_as_ctrl_c() as forwarded:
        WorkerArgs.space_file(run_folder).write_bytes(pickle.dumps(space))
        workers = [_Worker(settings, started, deadline, 0, Path(run_folder))]
        forwarded.extend(workers)
        try:
            while workers:
                time.sleep(POLL_SECONDS)
                codes = {worker: worker.process.poll() for worker in workers}  # a worker that exited wrote all its lines
                for worker in workers if on_activity else ():
                    for line in worker.new_activity():
                        on_activity(worker.slot, line)
                watcher.poll()  # after the lines: a trial reported as finished has shown all its epochs
                if watcher.first_trial_started and len(workers) < settings.workers and not watcher.more_started:
                    workers += [_Worker(settings, started, deadline, slot, Path(run_folder)) for slot in range(1, settings.workers)]
                    forwarded.extend(workers[1:])
                    watcher.more_started = True
                for worker in list(workers):
                    code = codes.get(worker)  # None: started in this round
                    if code is None:
                        continue
                    workers.remove(worker)
                    if code == EXIT_REPLACE_ME:
                        workers.append(_Worker(settings, started, deadline, worker.slot, Path(run_folder)))
                        forwarded.append(workers[-1])
                    elif code != 0:
                        raise worker.error(code)
            watcher.poll()
        except KeyboardInterrupt:  # the workers got the same Ctrl-C: let them record their trials as failed
            for worker in workers:
                try:
                    worker.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            raise
        finally:
            for worker in workers:
                worker.stop()
    if watcher.study is None:
        raise UserError(f"the search ended before study {settings.name!r} was created; see the output above")
    return watcher.study


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """While a search runs, SIGTERM (``kill``, a scheduler stopping the job) acts as Ctrl-C: it is
    passed on to the workers in the list this yields (which record their trials as failed) and
    interrupts this process. Outside the main thread signals cannot be handled: nothing changes."""
    workers: list[_Worker] = []

    def interrupt(signum, frame):
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield workers
        return
    try:
        yield workers
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Watcher:
    """Follows the study from this process: opens it once a worker created it, reports finished trials."""

    def __init__(self, settings: SearchSettings, callbacks: tuple, on_ready: Callable | None):
        self.settings, self.callbacks, self.on_ready = settings, callbacks, on_ready
        self.study: optuna.Study | None = None
        self.backend: optuna.storages.BaseStorage | None = None
        self.reported: set[int] = set()
        self.first_trial_started = self.more_started = False
        self.outage = storage_mod.Outage()

    def poll(self) -> None:
        """Report newly finished trials. A database server that cannot be reached (restarting) skips
        the poll; one unreachable for ``OUTAGE_SECONDS`` stops the search with one line."""
        try:
            if self.study is None and not self._open():
                return
            trials = self.study.get_trials(deepcopy=False)
        except storage_mod.STORAGE_ERRORS as error:
            if self.outage.tolerates():
                return
            raise UserError(f"the study's storage has been unreachable for {storage_mod.OUTAGE_SECONDS} s "
                            f"({storage_mod.storage_reason(error)}); fix the database, then rerun the same "
                            "command to resume") from error
        self.outage.ended()
        self.first_trial_started = self.first_trial_started or any(t.state != optuna.trial.TrialState.WAITING
                                                                   for t in trials)
        for trial in trials:
            if trial.state.is_finished() and trial.number not in self.reported:
                self.reported.add(trial.number)
                for callback in self.callbacks:
                    callback(self.study, trial)

    def _open(self) -> bool:
        try:
            self.backend = self.backend or storage_mod.open_storage(self.settings.location(), self.settings.heartbeat)
            self.study = optuna.load_study(study_name=self.settings.name, storage=self.backend)
        except (KeyError, UserError):  # not created yet (a worker reports a storage that cannot be opened)
            return False
        self.reported = {t.number for t in self.study.get_trials(deepcopy=False) if t.state.is_finished()}
        if self.on_ready is not None:
            self.on_ready(self.study)
        return True
