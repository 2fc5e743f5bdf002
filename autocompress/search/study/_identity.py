"""Create a study, or resume it after checking it is the same search; seed each process's sampler."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import optuna

from autocompress import __version__
from autocompress.cache import content_hash
from autocompress.errors import UserError
from autocompress.search import storage as storage_mod
from autocompress.search.record import StudyRecord, write_study
from autocompress.search.settings import SearchSettings
from autocompress.search.space import SearchSpace
from autocompress.search.study._sampler import directions, make_sampler

if TYPE_CHECKING:
    from autocompress.data import Dataset

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
                                      "objectives": list(settings.objectives), "size_metric": settings.size_metric,
                                      **_own_model(settings)}))
    with storage_mod.experimental_allowed():
        names = {"accuracy": "validation accuracy", "size": f"{settings.size_metric} bytes", "latency": "latency ms",
                 "ram": "arena bytes"}
        study.set_metric_names([names[name] for name in settings.objectives])
    stored = StudyRecord.of(study).search
    if stored is None:  # one attribute, written at once: concurrent workers never see half of it
        write_study(study, search=identity)
        write_study(study, **identity, versions=library_versions(), data_source=_data_source(settings, dataset),
                    folder=str(location.folder.resolve()))
    else:
        for key, value in identity.items():
            if stored.get(key) != value:
                raise UserError(f"study {settings.name!r} already exists with a different {key.replace('_', ' ')}; "
                                "pass a new --study-name, or rerun with the original settings to resume it")
    return study, space


def _own_model(settings: SearchSettings) -> dict:
    """A search of ``--model`` searches that file's content, fed as declared."""
    if settings.model_path is None:
        return {}
    return {"model": {"content": content_hash(Path(settings.model_path)), "input_scale": settings.input_scale,
                      "input_offset": settings.input_offset}}


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
