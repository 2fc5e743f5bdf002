"""What a search is asked to do, and which of a study's trials count towards it.

Nothing here imports TensorFlow: the supervising process (see :mod:`.supervisor`) needs only
this, Optuna and the storage, and stays small while its workers train.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

from autocompress.compress.npu import check_accelerator
from autocompress.errors import UserError
from autocompress.precision import CHOICES as PRECISIONS
from autocompress.search import storage as storage_mod
from autocompress.search.record import TrialRecord

if TYPE_CHECKING:
    from autocompress.search.space import SearchSpace

SAMPLERS = ("tpe", "nsga2", "nsga3", "random", "qmc")
OBJECTIVES = ("accuracy", "size", "latency", "ram")
SIZE_METRICS = ("tflite", "gzip")
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
EXIT_REPLACE_ME = 75  # a worker that ran its trials_per_process asks its supervisor for a fresh one


@dataclass(frozen=True)
class SearchSettings:
    """Everything ``autocompress search`` takes. ``max_size`` and ``max_ram`` (TFLite Micro's arena) are in bytes.

    ``trials_per_process``: a worker process runs this many trials (repeats of a completed one, which
    train nothing, do not count) and is then replaced by a fresh one, which gives back the memory
    TensorFlow keeps after every ``fit``; 0 never replaces.
    """

    dataset: str
    trials: int = 30
    study_name: str | None = None
    out: str | None = None
    storage: str | None = None
    config: str | None = None
    sampler: str = "tpe"
    seed: int | None = None
    size_metric: str = "tflite"
    objectives: tuple[str, ...] = ("accuracy", "size")
    max_size: int | None = None
    max_ram: int | None = None
    min_accuracy: float | None = None
    epochs: int | None = None
    timeout: float | None = None
    workers: int = 1
    data_dir: str | None = None
    cache_dir: str | None = None
    teacher_path: str | None = None
    teacher_epochs: int | None = None
    model_path: str | None = None  # the user's trained model, searched as student "model"
    input_scale: float = 1.0  # it takes pixels * input_scale + input_offset
    input_offset: float = 0.0
    heartbeat: int = storage_mod.HEARTBEAT_SECONDS
    multi_fidelity: bool = True
    cache_limit: int | None = 4 * 1024 ** 3
    trials_per_process: int = 10
    precision: str = "auto"
    npu: str | None = None  # an Ethos-U configuration Vela estimates every trial's file for

    def __post_init__(self) -> None:
        checks = [
            (self.trials >= 1, f"--trials must be >= 1 (got {self.trials})"),
            (self.sampler in SAMPLERS, f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}"),
            (self.size_metric in SIZE_METRICS, f"--size-metric must be tflite or gzip (got {self.size_metric!r})"),
            (tuple(self.objectives[:2]) == OBJECTIVES[:2] and set(self.objectives[2:]) <= set(OBJECTIVES[2:])
             and len(set(self.objectives)) == len(self.objectives),
             f"--objectives must be accuracy,size, then optionally latency and/or ram (got {','.join(self.objectives)})"),
            (self.max_size is None or self.max_size > 0, f"--max-size must be > 0 (got {self.max_size})"),
            (self.max_ram is None or self.max_ram > 0, f"--max-ram must be > 0 (got {self.max_ram})"),
            (self.min_accuracy is None or 0 < self.min_accuracy <= 1,
             f"--min-accuracy is a fraction in (0, 1], e.g. 0.9 (got {self.min_accuracy})"),
            (self.epochs is None or self.epochs >= 1, f"--epochs must be >= 1 (got {self.epochs})"),
            (self.timeout is None or self.timeout > 0, f"--timeout must be > 0 seconds (got {self.timeout})"),
            (self.workers >= 1, f"--workers must be >= 1 (got {self.workers})"),
            (self.heartbeat >= 1, f"--heartbeat must be >= 1 second (got {self.heartbeat})"),
            (self.cache_limit is None or self.cache_limit >= 0, f"--cache-limit must be >= 0 (got {self.cache_limit})"),
            (self.trials_per_process >= 0,
             f"--trials-per-process must be >= 0 (0: never replace a worker; got {self.trials_per_process})"),
            (math.isfinite(self.input_scale) and self.input_scale != 0 and math.isfinite(self.input_offset),
             f"--input-scale must be a non-zero number and --input-offset a number (got {self.input_scale}, "
             f"{self.input_offset}); 1 and 0 mean raw pixels 0-255"),
            (self.model_path is None or Path(self.model_path).exists(),
             f"model file {self.model_path} does not exist; pass a .keras or .h5 file or a SavedModel folder"),
            (self.precision in PRECISIONS,
             f"--precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)
        if self.npu is not None:
            check_accelerator(self.npu)

    @property
    def name(self) -> str:
        return self.study_name or Path(self.dataset).stem.replace(".tar", "")

    @property
    def stops_early(self) -> bool:
        """Multi-fidelity applies when the front is (accuracy, file bytes): see :mod:`.fidelity`."""
        return self.multi_fidelity and tuple(self.objectives) == OBJECTIVES[:2] and self.size_metric == "tflite"

    @property
    def reuses(self) -> bool:
        """Whether trials reuse anything: trained students, pruned models, repeated configurations' results."""
        return self.cache_limit != 0

    def location(self) -> storage_mod.StudyLocation:
        return storage_mod.locate(self.name, self.out, self.storage)

    def space(self, dataset_name: str) -> "SearchSpace":
        """The space searched: the config file's (or the built-in one for ``--model``, else for the
        dataset), without dynamic-range
        quantization when TFLite Micro must run every file (``--max-ram``, the ``ram`` objective)."""
        from autocompress.search.space import SearchSpace

        if self.config:
            space = SearchSpace.load(self.config)
        else:
            space = SearchSpace.for_model() if self.model_path else SearchSpace.for_dataset(dataset_name)
        if self.max_ram is not None or "ram" in self.objectives:
            space = space.without("quant", "dynamic", "which TensorFlow Lite Micro does not run (--max-ram, the ram "
                                                      "objective)")
        return space

    @classmethod
    def from_dict(cls, fields: dict) -> "SearchSettings":
        return cls(**{**fields, "objectives": tuple(fields["objectives"])})


@dataclass(frozen=True)
class WorkerArgs:
    """A worker process's one argument (as JSON): the search, when this run started and must end
    (``time.time()`` seconds), the worker's slot (which seeds its sampler), the run's folder (its
    space, each worker's error and activity files) and Optuna's log verbosity."""

    settings: SearchSettings
    run_started: float
    deadline: float | None
    slot: int
    run_folder: str
    verbosity: int

    def error_file(self) -> Path:
        """Where the worker writes its one-line error before it exits with code 2."""
        return Path(self.run_folder) / f"worker-{self.slot}.error"

    def activity_file(self) -> Path:
        """Where the worker appends a line per epoch of what it trains (the teacher, students) for the display."""
        return Path(self.run_folder) / f"worker-{self.slot}.activity"

    @staticmethod
    def space_file(run_folder: str | Path) -> Path:
        """The run's space (pickled), written by the supervisor before its first worker starts."""
        return Path(run_folder) / "space.pickle"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "WorkerArgs":
        values = json.loads(text)
        return cls(**{**values, "settings": SearchSettings.from_dict(values["settings"])})


def finished_or_running(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials that count towards ``--trials``: failed and surplus ones do not, nor repeats of a
    completed trial's configuration (:mod:`.repeats`), so a study of N trials holds N distinct ones."""
    return [t for t in study.get_trials(deepcopy=False, states=COUNTED)
            if not (record := TrialRecord.of(t)).surplus and record.repeats is None]
