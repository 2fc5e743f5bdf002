"""The multi-objective Optuna study as a worker process sees it: samplers, the trial objective, the trial loop.

Objectives: maximise validation accuracy of the exported ``.tflite`` and minimise its size
(optionally also its latency and TensorFlow Lite Micro's arena bytes, "ram"). A study runs
until it holds exactly ``trials`` finished (complete or pruned) trials, however many processes
share it and however often it is resumed; failed trials do not count and are retried.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import json
import math
import os
import pickle
import signal
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import optuna
import sqlalchemy
from optuna.trial import TrialState

from autocompress import __version__
from autocompress.cache import atomic_file, key_of, trim
from autocompress.compress.config import CompressionConfig
from autocompress.errors import UselessTeacher, UserError
from autocompress.search import fidelity, repeats
from autocompress.search import storage as storage_mod
from autocompress.search.settings import EXIT_REPLACE_ME, SearchSettings, finished_or_running
from autocompress.search.space import SearchSpace

if TYPE_CHECKING:
    from autocompress.data import Dataset

MAX_FAILURES_IN_A_ROW = 5
MAX_REPEATS_IN_A_ROW = 20  # then the sampler finds nothing new in the space: say so rather than loop
WAIT_SECONDS = 2.0  # how often a worker with nothing left to start checks on others' running trials
VERSIONED_PACKAGES = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "tflite-micro",
                      "optuna", "numpy")


def library_versions() -> dict[str, str]:
    versions = {"autocompress": __version__}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    return versions


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """Optuna's samplers; constraints reach them through ``trial.set_constraint``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=16)
        if name == "nsga3":
            return optuna.samplers.NSGAIIISampler(seed=seed, population_size=16)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
        return optuna.samplers.RandomSampler(seed=seed)


def directions(objectives: tuple[str, ...]) -> list[str]:
    return ["maximize" if name == "accuracy" else "minimize" for name in objectives]


def create_or_resume(settings: SearchSettings, dataset: Dataset, space: SearchSpace | None = None,
                     slot: int = 0) -> tuple[optuna.Study, SearchSpace]:
    """Create the study, or resume it after checking it is the same search (``space``, else the
    one ``settings`` name).

    A seeded sampler is seeded anew in each process, from the seed, the trials the study already
    holds and the worker's ``slot``: a replaced or resumed worker does not repeat the draws before it.
    """
    location = settings.location()
    backend = storage_mod.open_storage(location, settings.heartbeat)
    space = space or settings.space(dataset.name)
    study = optuna.create_study(study_name=settings.name, storage=backend, load_if_exists=True,
                                directions=directions(settings.objectives),
                                sampler=make_sampler(settings.sampler, _process_seed(settings, backend, slot)))
    identity = json.loads(json.dumps({"dataset": dataset.name, "space": space.to_dict(),
                                      "objectives": list(settings.objectives), "size_metric": settings.size_metric}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        names = {"accuracy": "validation accuracy", "size": f"{settings.size_metric} bytes", "latency": "latency ms",
                 "ram": "arena bytes"}
        study.set_metric_names([names[name] for name in settings.objectives])
    stored = study.user_attrs.get("search")
    if stored is None:  # one attribute, written at once: concurrent workers never see half of it
        study.set_user_attr("search", identity)
        for key, value in identity.items():  # also one by one, for the dashboard and reports
            study.set_user_attr(key, value)
        study.set_user_attr("versions", library_versions())
        study.set_user_attr("data_source", _data_source(settings, dataset))
        study.set_user_attr("folder", str(location.folder.resolve()))  # found again from --storage alone
    else:
        for key, value in identity.items():
            if stored.get(key) != value:
                raise UserError(f"study {settings.name!r} already exists with a different {key.replace('_', ' ')}; "
                                "pass a new --study-name, or rerun with the original settings to resume it")
    return study, space


def _data_source(settings: SearchSettings, dataset: Dataset) -> dict[str, str | None]:
    """Where the search read its data, so that export finds it again without flags: a known
    dataset's name (as :func:`load_dataset` decides) and the data dir, or the file it read."""
    from autocompress.data.registry import canonical_name

    return {"dataset": dataset.name if canonical_name(settings.dataset) else dataset.source,
            "data_dir": str(Path(settings.data_dir).expanduser().resolve()) if settings.data_dir else None}


def _process_seed(settings: SearchSettings, backend: optuna.storages.BaseStorage, slot: int) -> int | None:
    if settings.seed is None:
        return None
    try:
        held = len(backend.get_all_trials(backend.get_study_id_from_name(settings.name), deepcopy=False))
    except KeyError:  # a new study
        held = 0
    return settings.seed + held + 100_003 * slot


def _untrained(config: CompressionConfig, input_shape: tuple[int, ...], num_classes: int):
    """``config``'s student, untrained, after channel pruning: the shapes of the model it exports."""
    from autocompress.compress.prune import prune_channels
    from autocompress.models import build_model

    model = build_model(config.student, input_shape, num_classes, width=config.width)
    if config.prunes and config.prune_structure == "channel":
        model = prune_channels(model, config.sparsity, config.prune_scope, config.prune_layers)
    return model


@functools.lru_cache(maxsize=64)  # the --max-size check and the multi-fidelity rung both ask, per trial
def predicted_weight_bytes(config: CompressionConfig, input_shape: tuple[int, ...], num_classes: int) -> int:
    """A lower bound on the ``.tflite`` size: the weights alone, after channel pruning, at the quantized width."""
    bytes_per_weight = {"none": 4, "float16": 2}.get(config.quant, 1)
    return int(_untrained(config, input_shape, num_classes).count_params() * bytes_per_weight)


@functools.lru_cache(maxsize=64)
def predicted_arena_bytes(config: CompressionConfig, input_shape: tuple[int, ...], num_classes: int) -> int:
    """A lower bound on TFLite Micro's arena: the largest inputs-plus-output of one conv, dense,
    pooling or add op, which TFLM's planner must hold at once (1 byte an activation in full-integer
    models, else 4; layers the converter fuses into these ops add nothing)."""
    from autocompress._tf import keras

    kinds = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense, keras.layers.MaxPooling2D,
             keras.layers.AveragePooling2D, keras.layers.GlobalAveragePooling2D, keras.layers.Add)
    bytes_per_value = 1 if config.quant in ("int8", "qat") else 4

    def values(tensors) -> int:
        return sum(math.prod(t.shape[1:]) for t in (tensors if isinstance(tensors, list) else [tensors]))

    layers = [layer for layer in _untrained(config, input_shape, num_classes).layers if isinstance(layer, kinds)]
    return bytes_per_value * max(values(layer.input) + values(layer.output) for layer in layers)


@dataclass
class Objective:
    """One trial: suggest a configuration, compress it (or take the result of a completed trial that
    ran it: :mod:`.repeats`), record everything, return the objectives."""

    settings: SearchSettings
    space: SearchSpace
    context: object  # autocompress.compress.pipeline.Context
    location: storage_mod.StudyLocation
    versions: dict = field(default_factory=library_versions)

    def __call__(self, trial: optuna.Trial):
        from optuna.artifacts import upload_artifact

        release_memory()
        config = self.space.suggest(trial)
        if self.space.budget is not None:
            config = self.space.budget.allocate(config, trial.study)
        if self.settings.epochs is not None:
            config = CompressionConfig(**{**config.to_dict(), "epochs": min(config.epochs, self.settings.epochs),
                                          "finetune_epochs": min(config.finetune_epochs, self.settings.epochs)})
        dataset = self.context.dataset
        trial.set_user_attr("config", config.to_dict())
        trial.set_user_attr("label", config.label())
        trial.set_user_attr("versions", self.versions)
        if self.settings.max_size is not None:
            _within(trial, "predicted_min_bytes", predicted_weight_bytes(config, dataset.input_shape, dataset.num_classes),
                    self.settings.max_size, "weights alone need", "--max-size")
        if config.quant == "dynamic" and (self.settings.max_ram is not None or "ram" in self.settings.objectives):
            _pruned(trial, "TFLite Micro does not run dynamic-range (hybrid) models")
        if self.settings.max_ram is not None:
            _within(trial, "predicted_min_arena_bytes", predicted_arena_bytes(config, dataset.input_shape,
                                                                              dataset.num_classes),
                    self.settings.max_ram, "the largest op's activations alone need", "--max-ram")
        out_dir = self.location.trials_dir / f"{trial.number:05d}"
        try:
            record = self._repeated(trial, config, out_dir) or self._compressed(trial, config, out_dir)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # the trial fails with its reason on record; the study goes on
            reason = f"{type(error).__name__}: {error}"[:500]
            if isinstance(error, UselessTeacher):
                trial.set_user_attr("pruned_reason", reason)
                raise optuna.TrialPruned(str(error)) from None
            trial.set_user_attr("fail_reason", reason)
            raise
        finally:
            if self.settings.cache_limit is not None:
                models = self.context.model_cache
                trim([models / "students", models / "pruned"], self.settings.cache_limit)
        for key, value in record.items():
            trial.set_user_attr(key, value)
        store = storage_mod.artifact_store(self.location)
        trial.set_user_attr("artifacts", {
            kind: upload_artifact(artifact_store=store, file_path=record[f"{kind}_path"], study_or_trial=trial)
            for kind in ("tflite", "keras")})
        size = record["tflite_bytes"] if self.settings.size_metric == "tflite" else record["gzip_bytes"]
        if self.settings.max_size is not None:  # Optuna's convention: feasible when <= 0
            trial.set_constraint("max_size", size - self.settings.max_size)
        if self.settings.min_accuracy is not None:
            trial.set_constraint("min_accuracy", self.settings.min_accuracy - record["val_accuracy"])
        arena = record.get("arena_bytes")
        if self.settings.max_ram is not None:  # a file TFLite Micro cannot run fits no RAM budget
            trial.set_constraint("max_ram", math.inf if arena is None else arena - self.settings.max_ram)
        if arena is None and "ram" in self.settings.objectives:
            _pruned(trial, f"TFLite Micro cannot run it: {record.get('tflm_error')}")
        repeated = f" (as trial {record['repeats']})" if "repeats" in record else ""
        _save_note(trial, f"{config.label()}: {100 * record['val_accuracy']:.1f}% val, "
                          f"{100 * record['test_accuracy']:.1f}% test, {size / 1024:.1f} KB, "
                          f"arena {_kb(arena)}, {_millions(record.get('macs'))} MACs{repeated}")
        values = {"accuracy": record["val_accuracy"], "size": float(size), "latency": record["latency_ms"],
                  "ram": float(arena or 0)}
        return tuple(values[name] for name in self.settings.objectives)

    def _repeated(self, trial: optuna.Trial, config: CompressionConfig, out_dir: Path) -> dict | None:
        """The result of the completed trial that ran ``config`` already (see :mod:`.repeats`), if any."""
        from autocompress.compress import pipeline

        fingerprint = key_of(pipeline.run_key(config, self.context), self.versions)
        trial.set_user_attr("fingerprint", fingerprint)
        twin = repeats.completed_twin(trial.study, fingerprint) if self.settings.reuses else None
        try:
            return repeats.copied_result(twin, self.location, out_dir) if twin else None
        except UserError:  # the twin's files are gone (a study folder copied without them): run it again
            return None

    def _compressed(self, trial: optuna.Trial, config: CompressionConfig, out_dir: Path) -> dict:
        """Compress ``config`` now (stopping at the multi-fidelity rung if it cannot reach the front)."""
        from autocompress.compress import pipeline

        dataset = self.context.dataset
        rung = fidelity.rung_epoch(config.epochs) if self.settings.stops_early else None
        callbacks = [fidelity.rung_callback(rung, dataset.x_val, dataset.y_val, self._judge(trial, config))
                     ] if rung else []
        earlier = fidelity.stopped_student(trial.study, config) if rung else None
        if earlier is not None and not pipeline.has_trained_student(config, self.context):
            # its student stopped at the rung before and was not trained in full since: judge it on that rung
            number, accuracy = earlier
            self._judge(trial, config, measured_in=number)(accuracy)
        result = pipeline.run(config, self.context, out_dir, callbacks)
        return {key: value for key, value in result.to_dict().items() if key != "config"}

    def _judge(self, trial: optuna.Trial, config: CompressionConfig,
               measured_in: int | None = None) -> Callable[[float], None]:
        """Stop ``trial`` at its rung when a completed trial dominates its best case (judged on the
        rung accuracy its student had in trial ``measured_in``, when given)."""

        def judge(accuracy: float) -> None:
            trial.set_user_attr("rung_accuracy", accuracy)
            dataset = self.context.dataset
            min_size = predicted_weight_bytes(config, dataset.input_shape, dataset.num_classes)
            winner = fidelity.dominating(fidelity.history(trial.study, config.epochs), accuracy,
                                         min_size)
            if winner is not None:
                measured = ""
                if measured_in is not None:
                    measured = f" (its student's, in trial {measured_in})"
                    trial.set_user_attr("rung_trial", measured_in)
                reason = (f"multi-fidelity: {100 * accuracy:.1f}% after {fidelity.rung_epoch(config.epochs)} of "
                          f"{config.epochs} epochs{measured} cannot beat trial {winner.number} "
                          f"({100 * winner.val_accuracy:.1f}% at {winner.size:,.0f} B <= {min_size:,} B of weights)")
                trial.set_user_attr("pruned_reason", reason)
                raise optuna.TrialPruned(reason)

        return judge


def _pruned(trial: optuna.Trial, reason: str) -> None:
    trial.set_user_attr("pruned_reason", reason)
    raise optuna.TrialPruned(reason)


def _within(trial: optuna.Trial, attr: str, predicted: int, limit: int, what: str, flag: str) -> None:
    """Record the lower bound ``predicted`` as ``attr``; prune the trial when it exceeds ``limit``."""
    trial.set_user_attr(attr, predicted)
    if predicted > limit:
        _pruned(trial, f"{what} {predicted} bytes > {flag} {limit}")


def _kb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1024:.1f} KB"


def _millions(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.2f}M"


def release_memory() -> None:
    """Free the last trial's models and objects and hand the freed heap back to the OS (glibc
    keeps freed pages otherwise). tf-keras still keeps 12-13 MB per fit: hence the worker processes
    of :mod:`.supervisor`."""
    from autocompress._tf import keras

    keras.backend.clear_session()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def _save_note(trial: optuna.Trial, text: str) -> None:
    import optuna_dashboard

    optuna_dashboard.save_note(trial, text)


def _surplus_guard(study: optuna.Study, target: int) -> Callable[[optuna.Trial], None]:
    """Raise inside a trial that another worker's concurrent trial already made surplus."""

    def check(trial: optuna.Trial) -> None:
        ahead = [t for t in finished_or_running(study) if t.number < trial.number]
        if len(ahead) >= target:
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned("surplus: the study already had its trials when this one started")

    return check


def work(study: optuna.Study, objective: Objective, target: int, deadline: float | None = None,
         limit: int | None = None, run_started: float | None = None) -> bool:
    """Run trials until the study holds ``target`` counted trials (or ``deadline`` passes, or this
    process ran ``limit`` trials). True when it stopped at ``limit`` with trials still to run.
    Failures in a row are counted among the trials started since ``run_started`` (this run's)."""
    guard = _surplus_guard(study, target)
    ran = 0

    def guarded(trial: optuna.Trial):
        for key, value in _this_process().items():
            trial.set_user_attr(key, value)
        guard(trial)
        return objective(trial)

    while True:
        retry_dead_workers_trials(study)
        counted = finished_or_running(study)
        if deadline is not None and time.time() >= deadline:
            return False
        if len(counted) >= target and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            if not _worth_waiting_for(study, [t for t in counted if t.state == TrialState.RUNNING]):
                return False
            # another worker's trial is still running: wait for it to end; if that worker dies, its
            # trial is retried here (at once on this host, else once its heartbeat goes stale)
            with warnings.catch_warnings():  # "experimental" in Optuna 5, as the heartbeats are
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            time.sleep(WAIT_SECONDS)
            continue
        if limit is not None and ran >= limit:
            return True
        try:
            study.optimize(guarded, n_trials=1, catch=(Exception,))
        except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.SQLAlchemyError) as error:
            cause = getattr(error.__cause__, "orig", None) or error.__cause__ or error
            raise UserError(f"the study's storage could not be written ({str(cause).splitlines()[0]}); free disk "
                            "space or fix the database, then rerun the same command to resume") from error
        ran += 1
        _stop_if_failing(study, run_started)
        _stop_if_repeating(study, run_started, target)


def _this_process() -> dict[str, object]:
    """Who runs a trial: recorded when it starts, so that a later run can tell its worker died."""
    return {"worker_host": socket.gethostname(), "worker_pid": os.getpid(),
            "worker_started": _process_start(os.getpid())}


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), which tells a reused pid apart; None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def retry_dead_workers_trials(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials whose worker ran on this host and is gone (``kill -9``, a crash) and
    queue each again with the same parameters, as a stale heartbeat would, but at once. A trial of
    a live process, or of another host, is left to finish or to go stale. The failed trials' numbers."""
    host, failed = socket.gethostname(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        if attrs.get("worker_host") != host or "worker_started" not in attrs:  # recorded last: until then
            continue  # its worker is still recording itself (host and pid alone would make it look dead)
        if _alive(attrs["worker_pid"], attrs.get("worker_started")):
            continue
        storage = study._storage
        try:
            storage.set_trial_user_attr(trial._trial_id, "fail_reason",
                                        f"its worker (pid {attrs['worker_pid']} on {host}) died")
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:  # another process failed it first
            continue
        storage_mod.retry_callback()(study, storage.get_trial(trial._trial_id))
        failed.append(trial.number)
    return failed


def _worth_waiting_for(study: optuna.Study, running: list[optuna.trial.FrozenTrial]) -> bool:
    """Whether some of ``running`` (others' trials) will end or be retried: a trial on this host is
    watched through its process, one elsewhere through its heartbeat (a journal file has none)."""
    storage = study._storage
    beats = isinstance(storage, optuna.storages.RDBStorage) and storage.get_heartbeat_interval() is not None
    return any(beats or t.user_attrs.get("worker_host") == socket.gethostname() for t in running)


def _alive(pid: int, started: str | None) -> bool:
    """Whether process ``pid``, started at ``started`` (see :func:`_process_start`), still runs."""
    now = _process_start(pid)
    if now is not None or started is not None:  # Linux: the start time also tells a reused pid apart
        return now == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _last_ended(study: optuna.Study, run_started: float | None, count: int) -> list[optuna.trial.FrozenTrial]:
    """The last ``count`` trials this run (started at ``run_started``) finished, oldest first."""
    return sorted((t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.datetime_complete
                   and (run_started is None or t.datetime_start.timestamp() >= run_started)),
                  key=lambda t: t.datetime_complete)[-count:]


def _stop_if_repeating(study: optuna.Study, run_started: float | None, target: int) -> None:
    """Stop the search when the sampler's last ``MAX_REPEATS_IN_A_ROW`` proposals this run all repeated
    a completed trial (repeats do not count towards ``--trials``: without this a small space loops)."""
    ended = _last_ended(study, run_started, MAX_REPEATS_IN_A_ROW)
    if len(ended) == MAX_REPEATS_IN_A_ROW and all("repeats" in t.user_attrs for t in ended):
        raise UserError(f"the sampler proposed {MAX_REPEATS_IN_A_ROW} configurations in a row that the study "
                        f"already holds, so it stops at {len(finished_or_running(study))} distinct trials "
                        f"of {target}: widen the space (more choices), or ask for fewer --trials")


def _stop_if_failing(study: optuna.Study, run_started: float | None) -> None:
    """Stop the search when the last ``MAX_FAILURES_IN_A_ROW`` trials this run finished all failed
    (failures of an earlier run, whose cause the user may have fixed since, do not count)."""
    ended = _last_ended(study, run_started, MAX_FAILURES_IN_A_ROW)
    if len(ended) == MAX_FAILURES_IN_A_ROW and all(t.state == TrialState.FAIL for t in ended):
        reason = ended[-1].user_attrs.get("fail_reason", "see the trials' fail reasons")
        raise UserError(f"{MAX_FAILURES_IN_A_ROW} trials in a row failed (last: {reason}); "
                        "fix the cause and rerun the same command to resume")


def prepare(settings: SearchSettings, slot: int = 0, space_file: Path | None = None):
    """Load the data, the study and the context (the teacher loads when a trial first needs it).

    ``space_file`` keeps one run's space: the first worker writes the space it read there, and
    the run's later workers (other slots, replacements) take it from there, so editing the TOML
    during a search does not change it. ``slot`` seeds a seeded sampler (:func:`create_or_resume`).
    """
    from autocompress.api import make_context
    from autocompress.data import load_dataset

    dataset = load_dataset(settings.dataset, settings.data_dir, settings.cache_dir)
    image = math.prod(dataset.input_shape)
    if settings.max_ram is not None and settings.max_ram < image:
        raise UserError(f"--max-ram {settings.max_ram} B is below the {image} B of one input image, which every "
                        "model's TFLite Micro arena holds; give a larger budget, e.g. 64KB")
    known = pickle.loads(space_file.read_bytes()) if space_file and space_file.exists() else None
    study, space = create_or_resume(settings, dataset, known, slot)
    if space_file and known is None:
        with atomic_file(space_file) as tmp:
            tmp.write_bytes(pickle.dumps(space))
    context = make_context(dataset, settings.cache_dir, teacher_epochs=settings.teacher_epochs,
                           teacher_path=settings.teacher_path, precision=settings.precision)
    context.models_dir = settings.location().folder / "cache"  # the study's students and pruned models
    return study, space, context


def worker_main(settings_json: str, run_started: str, deadline: str, slot: str, run_folder: str,
                verbosity: str) -> None:
    """A worker process started by :func:`autocompress.search.supervisor.run_search`: prepare, then
    run trials; exit 0 when the study is done, ``EXIT_REPLACE_ME`` after ``trials_per_process``
    trials, or 2 with the one-line error written to ``<run_folder>/worker-<slot>.error``. Optuna
    logs at the supervisor's ``verbosity``."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, _interrupted)  # like Ctrl-C: the running trial is recorded as failed
    optuna.logging.set_verbosity(int(verbosity))
    settings = SearchSettings.from_json(settings_json)
    error_file = Path(run_folder) / f"worker-{slot}.error"
    try:
        study, space, context = prepare(settings, int(slot), Path(run_folder) / "space.pickle")
        if space_distils(space):
            context.get_teacher()  # trained here, once, before the first trial
        more = work(study, Objective(settings, space, context, settings.location()), settings.trials,
                    float(deadline) if deadline else None, settings.trials_per_process or None, float(run_started))
    except UserError as error:
        error_file.write_text(str(error))
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the supervisor reports it
        sys.exit(130)
    sys.exit(EXIT_REPLACE_ME if more else 0)


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when its supervisor dies (even by ``kill -9``)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):  # not Linux: workers then outlive a killed supervisor
        pass


def space_distils(space: SearchSpace) -> bool:
    return any(k.name in ("distill", "alpha") for k in space.knobs)
