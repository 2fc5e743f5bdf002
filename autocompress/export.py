"""Export one trial of a study: its ``.tflite``, its float Keras model, a model card and firmware
sources for TensorFlow Lite Micro (:mod:`autocompress.firmware`), verified.

The trial is chosen by number or by a rule applied to the study's Pareto front
(:func:`choose_trial`). The files are read from the study's artifact store (falling back to
the trial folder), the ``.tflite`` is re-evaluated on the test split, and only a model that
reproduces its recorded test accuracy (within :data:`TOLERANCE`) and size is moved into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from autocompress.errors import UserError
from autocompress.search.front import front_trials
from autocompress.search.storage import StudyLocation, artifact_store, load_study

if TYPE_CHECKING:
    from autocompress.data import Dataset

TOLERANCE = 0.001  # 0.1 accuracy point
FILES = {"tflite": "model.tflite", "keras": "model.keras"}
CARD = "model.json"


class VerificationError(Exception):
    """The exported ``.tflite`` does not reproduce what its trial recorded (the CLI exits with 1)."""


# ---------------------------------------------------------------- choosing the trial


def _accuracy(trial: FrozenTrial) -> float:
    return trial.values[0]


def _size(trial: FrozenTrial) -> float:
    return trial.values[1]


def best_accuracy(front: list[FrozenTrial]) -> FrozenTrial:
    """The highest validation accuracy; ties go to the smaller model."""
    return max(front, key=lambda t: (_accuracy(t), -_size(t)))


def smallest(front: list[FrozenTrial]) -> FrozenTrial:
    """The smallest model of the front (its least accurate point)."""
    return min(front, key=lambda t: (_size(t), -_accuracy(t)))


def knee(front: list[FrozenTrial]) -> FrozenTrial:
    """The front point lying furthest above the chord between the front's two extremes.

    Each point is placed at (log size, validation accuracy), both rescaled to [0, 1] over the
    front; the chord joins the smallest and the most accurate point, and the knee is the point
    with the largest signed distance above it: the best accuracy bought per doubling of size.
    When no point lies above the chord (e.g. a front of one or two points), this is the
    smallest model.
    """
    low, high = smallest(front), best_accuracy(front)
    xs = [math.log(_size(t)) for t in front]
    ys = [_accuracy(t) for t in front]
    x_span, y_span = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0

    def point(trial: FrozenTrial) -> tuple[float, float]:
        return (math.log(_size(trial)) - min(xs)) / x_span, (_accuracy(trial) - min(ys)) / y_span

    (x0, y0), (x1, y1) = point(low), point(high)
    length = math.hypot(x1 - x0, y1 - y0) or 1.0

    def above(trial: FrozenTrial) -> float:
        x, y = point(trial)
        return ((x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)) / length

    return max(front, key=lambda t: (round(above(t), 12), -_size(t)))


PICKS: dict[str, Callable[[list[FrozenTrial]], FrozenTrial]] = {
    "best-accuracy": best_accuracy, "smallest": smallest, "knee": knee,
}


@dataclass(frozen=True)
class Selection:
    """How the trial is chosen: exactly one of a trial number, a ``pick`` rule (:data:`PICKS`),
    a size budget in bytes (the most accurate front point within it) or a validation accuracy
    floor (the smallest front point reaching it)."""

    trial: int | None = None
    pick: str | None = None
    max_size: int | None = None
    min_accuracy: float | None = None

    def __post_init__(self) -> None:
        given = [value is not None for value in (self.trial, self.pick, self.max_size, self.min_accuracy)]
        checks = [
            (sum(given) == 1, "choose the model with exactly one of --trial, --pick, --max-size or --min-accuracy"),
            (self.pick is None or self.pick in PICKS,
             f"unknown --pick {self.pick!r}; choose one of {', '.join(PICKS)}"),
            (self.max_size is None or self.max_size > 0, f"--max-size must be > 0 (got {self.max_size})"),
            (self.min_accuracy is None or 0 < self.min_accuracy <= 1,
             f"--min-accuracy is a fraction in (0, 1], e.g. 0.9 (got {self.min_accuracy})"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(message)


def completed_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial ``number`` of ``study``, which must have completed (only those have a model)."""
    trials = study.get_trials(deepcopy=False)
    trial = next((t for t in trials if t.number == number), None)
    if trial is None:
        known = f"0-{len(trials) - 1}" if trials else "none"
        raise UserError(f"study {study.study_name!r} has no trial {number} (trials: {known})")
    if trial.state != TrialState.COMPLETE:
        raise UserError(f"trial {number} of study {study.study_name!r} is {trial.state.name.lower()}, "
                        "not complete, so it has no model; pick a completed trial (see autocompress front)")
    return trial


def _kb(size: float) -> str:
    return f"{size / 1024:.1f} KB"


def _within_size(study: optuna.Study, front: list[FrozenTrial], max_size: int) -> FrozenTrial:
    fits = [t for t in front if _size(t) <= max_size]
    if not fits:
        least = smallest(front)
        raise UserError(f"no trial of study {study.study_name!r} is <= {_kb(max_size)}; "
                        f"the smallest is trial {least.number} at {_kb(_size(least))}")
    return best_accuracy(fits)


def _above_accuracy(study: optuna.Study, front: list[FrozenTrial], floor: float) -> FrozenTrial:
    fits = [t for t in front if _accuracy(t) >= floor]
    if not fits:
        best = best_accuracy(front)
        raise UserError(f"no trial of study {study.study_name!r} reaches {100 * floor:.2f}% validation accuracy; "
                        f"the most accurate is trial {best.number} at {100 * _accuracy(best):.2f}%")
    return smallest(fits)


def choose_trial(study: optuna.Study, selection: Selection) -> FrozenTrial:
    """The trial ``selection`` names; the rules other than ``trial`` look only at the Pareto front."""
    if selection.trial is not None:
        return completed_trial(study, selection.trial)
    front = front_trials(study)
    if not front:
        raise UserError(f"study {study.study_name!r} has no feasible trial (none meets its constraints); "
                        "export one by --trial N")
    if selection.pick is not None:
        return PICKS[selection.pick](front)
    if selection.max_size is not None:
        return _within_size(study, front, selection.max_size)
    return _above_accuracy(study, front, selection.min_accuracy)


# ---------------------------------------------------------------- writing the export


@dataclass(frozen=True)
class ExportSettings:
    """Everything ``autocompress export`` takes. ``dataset`` and ``data_dir`` default to where the search read its data."""

    study: str
    out: Path
    selection: Selection
    study_dir: Path | None = None
    storage: str | None = None
    dataset: str | None = None
    data_dir: Path | None = None
    cache_dir: Path | None = None


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    trial: int
    card: dict


def _check_target(target: Path) -> None:
    if target.exists() and not (target.is_dir() and (not any(target.iterdir()) or (target / CARD).exists())):
        raise UserError(f"--out {target} exists and is not an earlier export; choose a new or empty folder")


def _sibling(target: Path, role: str) -> Path:
    """A fresh hidden name beside ``target`` (a folder made there gets the usual permissions, unlike mkdtemp's)."""
    return target.parent / f".{target.name}.{role}-{os.getpid()}-{secrets.token_hex(4)}"


def _replace(source: Path, target: Path) -> None:
    """Move folder ``source`` to ``target``, replacing an earlier export there."""
    if not target.exists():
        os.replace(source, target)
        return
    old = _sibling(target, "old")
    os.replace(target, old)
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staging(target: Path) -> Iterator[Path]:
    """A temporary folder beside ``target``, moved into place only if the block succeeds."""
    target = Path(target)
    _check_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _sibling(target, "export")
        tmp.mkdir()
    except OSError as error:
        raise UserError(f"cannot write to {target} ({error.strerror or error}); choose a writable --out") from None
    try:
        yield tmp
        _replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch_file(trial: FrozenTrial, location: StudyLocation, kind: str, path: Path) -> None:
    """Copy the trial's ``kind`` file ("tflite" or "keras") to ``path``: from the artifact store,
    else from the trial folder."""
    artifact_id = trial.user_attrs.get("artifacts", {}).get(kind)
    if artifact_id and (location.artifact_dir / artifact_id).exists():
        optuna.artifacts.download_artifact(artifact_store=artifact_store(location), artifact_id=artifact_id,
                                           file_path=str(path))
        return
    fallback = location.trials_dir / f"{trial.number:05d}" / FILES[kind]
    if not fallback.exists():
        raise UserError(f"trial {trial.number}'s {FILES[kind]} is neither in {location.artifact_dir} "
                        f"nor at {fallback}; was the study folder moved without them?")
    shutil.copyfile(fallback, path)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _load_dataset(settings: ExportSettings, study: optuna.Study) -> Dataset:
    """``settings.dataset`` / ``data_dir``, else where the search read its data (if still there)."""
    from autocompress.data import load_dataset

    searched_on = study.user_attrs.get("search", {}).get("dataset")
    source = study.user_attrs.get("data_source", {})
    recorded_dir = source.get("data_dir")
    recorded = source.get("dataset")
    if recorded and Path(recorded).is_absolute() and not Path(recorded).exists():
        recorded = None  # the file moved: fall back to the dataset's name
    dataset_arg = settings.dataset or recorded or searched_on
    if not dataset_arg:
        raise UserError(f"study {study.study_name!r} does not record its dataset; pass --dataset")
    data_dir = settings.data_dir or (recorded_dir if recorded_dir and Path(recorded_dir).is_dir() else None)
    dataset = load_dataset(dataset_arg, data_dir, settings.cache_dir)
    if searched_on and dataset.name != searched_on:
        raise UserError(f"--dataset {settings.dataset} is {dataset.name!r} but study {study.study_name!r} "
                        f"was searched on {searched_on!r}; pass the dataset the search used")
    return dataset


def verify(trial: FrozenTrial, tflite: Path, test_accuracy: float) -> None:
    """Raise :class:`VerificationError` unless the file matches the trial's recorded size and test accuracy."""
    recorded, size = trial.user_attrs["test_accuracy"], tflite.stat().st_size
    if size != trial.user_attrs["tflite_bytes"]:
        raise VerificationError(f"trial {trial.number}'s model.tflite is {size} bytes but the trial recorded "
                                f"{trial.user_attrs['tflite_bytes']}; nothing was exported")
    if abs(test_accuracy - recorded) > TOLERANCE:
        raise VerificationError(f"the exported model.tflite scores {100 * test_accuracy:.2f}% on the test split "
                                f"but trial {trial.number} recorded {100 * recorded:.2f}%; nothing was exported")


def usage_snippet(contract: dict) -> str:
    """Python that loads ``model.tflite`` with ai-edge-litert and classifies one (blank) image."""
    shape, dtype = tuple(contract["shape"]), contract["dtype"]
    return "\n".join([
        "import numpy as np",
        "from ai_edge_litert.interpreter import Interpreter",
        "",
        'interpreter = Interpreter(model_path="model.tflite")',
        "interpreter.allocate_tensors()",
        "entry, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]",
        f"image = np.zeros({shape}, dtype=np.{dtype})  # raw pixels 0-255, {contract.get('layout', 'NHWC')}",
        'interpreter.set_tensor(entry["index"], image)',
        "interpreter.invoke()",
        'print("class", int(np.argmax(interpreter.get_tensor(out["index"])[0])))',
        "",
    ])


def model_card(study: optuna.Study, trial: FrozenTrial, dataset: Dataset, folder: Path, test_accuracy: float,
               load_as: str) -> dict:
    """The contents of ``model.json``: where the model came from, what it scores and how to run it."""
    attrs, search = trial.user_attrs, study.user_attrs.get("search", {})
    from autocompress import firmware
    from autocompress.compress import micro

    files = {name: {"bytes": (folder / name).stat().st_size, "sha256": sha256(folder / name)}
             for name in (*FILES.values(), *firmware.FILES)}
    tflite = folder / FILES["tflite"]
    return {
        "study": study.study_name, "trial": trial.number, "label": attrs.get("label"),
        "dataset": {"name": dataset.name, "load_as": load_as, "fingerprint": dataset.fingerprint,
                    "class_names": list(dataset.class_names), "test_images": len(dataset.x_test)},
        "config": attrs.get("config"),
        "val_accuracy": attrs.get("val_accuracy"), "test_accuracy": attrs.get("test_accuracy"),
        "test_accuracy_at_export": test_accuracy,
        "tflite_bytes": files[FILES["tflite"]]["bytes"], "gzip_bytes": attrs.get("gzip_bytes"),
        "sha256": files[FILES["tflite"]]["sha256"], "files": files,
        **{key: attrs.get(key) for key in ("params", "nonzero_params", "sparsity", "latency_ms", "efficiency",
                                           "teacher", "notes")},
        **{key: search.get(key) for key in ("objectives", "size_metric")},
        "versions": attrs.get("versions"),
        "input_contract": attrs.get("input_contract"),
        "microcontroller": {
            "flash_bytes": files[FILES["tflite"]]["bytes"], "arena_bytes": attrs.get("arena_bytes"),
            "macs": micro.macs(tflite), "tflm_agreement": attrs.get("tflm_agreement"),
            "tflm_error": attrs.get("tflm_error"), "operators": list(micro.operators(tflite)),
            "quantization": micro.io_quantization(tflite),
            "preprocessing": "none: feed raw pixels 0-255 unchanged (NHWC, in the input's dtype); the model "
                             "normalises them itself (a quantized input's scale and zero point say how it reads them)",
            "firmware": list(firmware.FILES)},
        "usage": usage_snippet(attrs["input_contract"]),
    }


def export_model(settings: ExportSettings) -> ExportResult:
    """Write the chosen trial's ``model.tflite``, ``model.keras``, ``model.json`` and firmware sources to ``settings.out``.

    Everything is written to a temporary folder beside ``out`` and moved into place only after
    the ``.tflite`` has reproduced its recorded test accuracy; otherwise
    :class:`VerificationError` is raised and ``out`` is left as it was.
    """
    from autocompress.compress.measure import accuracy
    from autocompress.data.registry import canonical_name
    from autocompress.firmware import write_sources

    study, location = load_study(settings.study, settings.study_dir, settings.storage)
    trial = choose_trial(study, settings.selection)
    with staging(Path(settings.out)) as folder:
        dataset = _load_dataset(settings, study)
        for kind, name in FILES.items():
            fetch_file(trial, location, kind, folder / name)
        measured = accuracy(folder / FILES["tflite"], dataset.x_test, dataset.y_test)
        verify(trial, folder / FILES["tflite"], measured)
        write_sources(folder, folder / FILES["tflite"], study.study_name,
                      f"study {study.study_name!r}, trial {trial.number}", trial.user_attrs.get("arena_bytes"))
        load_as = dataset.name if canonical_name(settings.dataset or dataset.name) else dataset.source
        card = model_card(study, trial, dataset, folder, measured, load_as)
        (folder / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return ExportResult(Path(settings.out), trial.number, card)
