"""Export one trial of a study: its ``.tflite``, its float Keras model, a model card and firmware
sources for TensorFlow Lite Micro (:mod:`autocompress.firmware`), verified.

The trial is chosen by number or by a rule applied to the study's Pareto front
(:mod:`autocompress.search.choice`); :func:`export_front` exports every front point (up to a size).
The files are read from the study's artifact store (falling back to the trial folder), the
``.tflite`` is re-evaluated on the test split, and only a model that reproduces its recorded test
accuracy (within :data:`TOLERANCE`) and size is moved into place.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import optuna
from optuna.trial import FrozenTrial

from autocompress.cache import atomic_directory, file_sha256
from autocompress.errors import UserError
from autocompress.search.artifacts import FILES, fetch_file
from autocompress.search.choice import Selection, choose_front, choose_trial
from autocompress.search.record import StudyRecord, TrialRecord
from autocompress.search.storage import StudyLocation, load_study

if TYPE_CHECKING:
    from autocompress.data import Dataset

TOLERANCE = 0.001  # 0.1 accuracy point
CARD = "model.json"
FRONT_MARKER = "front.json"  # what an earlier export_front left


class VerificationError(Exception):
    """The exported ``.tflite`` does not reproduce what its trial recorded (the CLI exits with 1)."""


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


def _check_target(target: Path, marker: str) -> None:
    if target.exists() and not (target.is_dir() and (not any(target.iterdir()) or (target / marker).exists())):
        raise UserError(f"--out {target} exists and is not an earlier export; choose a new or empty folder")


@contextlib.contextmanager
def staging(target: Path, marker: str = CARD) -> Iterator[Path]:
    """A temporary folder beside ``target``, moved into place only if the block succeeds; ``target`` must be
    new, empty, or an earlier export (holding ``marker``)."""
    target = Path(target)
    _check_target(target, marker)
    stack = contextlib.ExitStack()
    try:
        tmp = stack.enter_context(atomic_directory(target, replace=True))
    except OSError as error:
        raise UserError(f"cannot write to {target} ({error.strerror or error}); choose a writable --out") from None
    with stack:
        yield tmp


def _load_dataset(settings: ExportSettings, study: optuna.Study) -> Dataset:
    """``settings.dataset`` / ``data_dir``, else where the search read its data (if still there)."""
    from autocompress.data import load_dataset

    recorded_study = StudyRecord.of(study)
    searched_on = recorded_study.searched("dataset")
    source = recorded_study.data_source or {}
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
    record = TrialRecord.of(trial)
    recorded, size = record.test_accuracy, tflite.stat().st_size
    if size != record.tflite_bytes:
        raise VerificationError(f"trial {trial.number}'s model.tflite is {size} bytes but the trial recorded "
                                f"{record.tflite_bytes}; nothing was exported")
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
    record, search = TrialRecord.of(trial), StudyRecord.of(study)
    from autocompress import firmware
    from autocompress.compress import micro

    files = {name: {"bytes": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
             for name in (*FILES.values(), *firmware.FILES)}
    tflite = folder / FILES["tflite"]
    return {
        "study": study.study_name, "trial": trial.number, "label": record.label,
        "dataset": {"name": dataset.name, "load_as": load_as, "fingerprint": dataset.fingerprint,
                    "class_names": list(dataset.class_names), "test_images": len(dataset.x_test)},
        "config": record.config,
        "val_accuracy": record.val_accuracy, "test_accuracy": record.test_accuracy,
        "test_accuracy_at_export": test_accuracy,
        "tflite_bytes": files[FILES["tflite"]]["bytes"], "gzip_bytes": record.gzip_bytes,
        "sha256": files[FILES["tflite"]]["sha256"], "files": files,
        **{key: getattr(record, key) for key in ("params", "nonzero_params", "sparsity", "latency_ms", "efficiency",
                                                 "teacher", "notes")},
        **{key: search.searched(key) for key in ("objectives", "size_metric")},
        "versions": record.versions,
        "input_contract": record.input_contract,
        "microcontroller": {
            "flash_bytes": files[FILES["tflite"]]["bytes"], "arena_bytes": record.arena_bytes,
            "macs": micro.macs(tflite), "tflm_agreement": record.tflm_agreement,
            "tflm_error": record.tflm_error, "operators": list(micro.operators(tflite)),
            "quantization": micro.io_quantization(tflite),
            "preprocessing": "none: feed raw pixels 0-255 unchanged (NHWC, in the input's dtype); the model "
                             "normalises them itself (a quantized input's scale and zero point say how it reads them)",
            "firmware": list(firmware.FILES)},
        "npu": None if record.npu is None else {  # Vela's estimate (search --npu), not a measurement
            "accelerator": record.npu, "inference_ms": record.npu_ms, "cycles": record.npu_cycles,
            "sram_bytes": record.npu_sram_bytes, "cpu_operators": record.npu_cpu_operators, "error": record.npu_error},
        "usage": usage_snippet(record.input_contract),
    }


def _write_trial(folder: Path, study: optuna.Study, location: StudyLocation, trial: FrozenTrial, dataset: Dataset,
                 load_as: str) -> dict:
    """Fetch ``trial``'s files into ``folder``, verify the ``.tflite``, add firmware sources and the card; the card."""
    from autocompress.compress.measure import accuracy
    from autocompress.firmware import write_sources

    for kind, name in FILES.items():
        fetch_file(trial, location, kind, folder / name)
    measured = accuracy(folder / FILES["tflite"], dataset.x_test, dataset.y_test)
    verify(trial, folder / FILES["tflite"], measured)
    write_sources(folder, folder / FILES["tflite"], study.study_name,
                  f"study {study.study_name!r}, trial {trial.number}", TrialRecord.of(trial).arena_bytes)
    card = model_card(study, trial, dataset, folder, measured, load_as)
    (folder / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return card


def _dataset_and_name(settings: ExportSettings, study: optuna.Study) -> tuple[Dataset, str]:
    """The test data, and the name (or path) a card tells ``load_dataset`` to read it by."""
    from autocompress.data.registry import canonical_name

    dataset = _load_dataset(settings, study)
    return dataset, dataset.name if canonical_name(settings.dataset or dataset.name) else dataset.source


def export_model(settings: ExportSettings) -> ExportResult:
    """Write the chosen trial's ``model.tflite``, ``model.keras``, ``model.json`` and firmware sources to ``settings.out``.

    Everything is written to a temporary folder beside ``out`` and moved into place only after
    the ``.tflite`` has reproduced its recorded test accuracy; otherwise
    :class:`VerificationError` is raised and ``out`` is left as it was.
    """
    study, location = load_study(settings.study, settings.study_dir, settings.storage)
    trial = choose_trial(study, settings.selection)
    with staging(Path(settings.out)) as folder:
        dataset, load_as = _dataset_and_name(settings, study)
        card = _write_trial(folder, study, location, trial, dataset, load_as)
    return ExportResult(Path(settings.out), trial.number, card)


def export_front(settings: ExportSettings) -> list[ExportResult]:
    """Export every front point of ``settings.selection`` (a ``front`` one) to ``out/trial-<N>``, each as
    :func:`export_model` would, beside the study's ``front.csv`` and ``front.json``.

    All or nothing: the folder moves into place only once every ``.tflite`` has reproduced its trial's
    recorded test accuracy and size.
    """
    from autocompress.search.front import write_front

    study, location = load_study(settings.study, settings.study_dir, settings.storage)
    trials = choose_front(study, settings.selection)
    results = []
    with staging(Path(settings.out), marker=FRONT_MARKER) as folder:
        dataset, load_as = _dataset_and_name(settings, study)
        for trial in trials:
            name = f"trial-{trial.number}"
            (folder / name).mkdir()
            card = _write_trial(folder / name, study, location, trial, dataset, load_as)
            results.append(ExportResult(Path(settings.out) / name, trial.number, card))
        write_front(study, folder, page=False)
    return results
