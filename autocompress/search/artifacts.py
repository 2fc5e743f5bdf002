"""A trial's model files: uploaded to the study's artifact store, fetched back from it (or, for a
study folder copied without its store, from the trial folder)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact
from optuna.trial import FrozenTrial

from autocompress.cache import atomic_file
from autocompress.errors import UserError
from autocompress.search.record import TrialRecord
from autocompress.search.storage import StudyLocation

FILES = {"tflite": "model.tflite", "keras": "model.keras"}


class AtomicArtifactStore(FileSystemArtifactStore):
    """Optuna's file store, whose files appear whole: Optuna's own ``write`` fills the file in place,
    so a crash mid-upload left a truncated model under an id the trial names."""

    def __init__(self, folder: Path):
        super().__init__(str(folder))
        self.folder = Path(folder)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        with atomic_file(self.folder / artifact_id) as tmp, open(tmp, "wb") as handle:
            shutil.copyfileobj(content_body, handle)


def artifact_store(location: StudyLocation) -> AtomicArtifactStore:
    location.artifact_dir.mkdir(parents=True, exist_ok=True)
    return AtomicArtifactStore(location.artifact_dir)


def upload_files(trial: optuna.Trial, location: StudyLocation, paths: dict[str, str]) -> dict[str, str]:
    """Upload each of ``paths`` (kind -> file, the kinds of :data:`FILES`); their artifact ids by kind."""
    store = artifact_store(location)
    return {kind: upload_artifact(artifact_store=store, file_path=paths[kind], study_or_trial=trial) for kind in FILES}


def fetch_file(trial: FrozenTrial, location: StudyLocation, kind: str, path: Path) -> None:
    """Copy the trial's ``kind`` file ("tflite" or "keras") to ``path``: from the artifact store,
    else from the trial folder."""
    artifact_id = (TrialRecord.of(trial).artifacts or {}).get(kind)
    if artifact_id and (location.artifact_dir / artifact_id).exists():
        download_artifact(artifact_store=artifact_store(location), artifact_id=artifact_id, file_path=str(path))
        return
    fallback = location.trial_dir(trial.number) / FILES[kind]
    if not fallback.exists():
        raise UserError(f"trial {trial.number}'s {FILES[kind]} is neither in {location.artifact_dir} "
                        f"nor at {fallback}; was the study folder moved without them?")
    shutil.copyfile(fallback, path)
