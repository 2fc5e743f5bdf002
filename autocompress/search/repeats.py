"""Repeated configurations: a trial whose configuration a completed trial already ran takes that
trial's measured result and files instead of compressing the same model again.

Samplers repeat configurations (TPE in a converged region; random draws from a discrete space:
30 of 100 random trials in the built-in Fashion-MNIST space). A repeat is recognised by its
fingerprint: the trained student's cache key (dataset, teacher, library version), the whole
configuration and the library versions, so a resumed study with other data or versions
recomputes. Switched off with the model caches (``--cache-limit 0B``).
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from autocompress.cache import atomic_file
from autocompress.search.artifacts import FILES, fetch_file
from autocompress.search.record import TrialRecord
from autocompress.search.storage import StudyLocation


def completed_twin(study: optuna.Study, fingerprint: str) -> FrozenTrial | None:
    """The first completed trial of ``study`` that ran the configuration ``fingerprint`` names."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if TrialRecord.of(trial).fingerprint == fingerprint:
            return trial
    return None


def copied_result(twin: FrozenTrial, location: StudyLocation, out_dir: Path) -> dict:
    """``twin``'s measured result (as a trial records it, plus ``repeats``: the twin's number) with its
    ``.tflite`` and ``.keras`` copied to ``out_dir``, where ``result.json`` is written as a run writes it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    recorded = TrialRecord.of(twin)
    record = recorded.measured()
    for kind in ("tflite", "keras"):
        path = out_dir / FILES[kind]
        fetch_file(twin, location, kind, path)
        record[f"{kind}_path"] = str(path)
    record.update(stage_seconds={}, reused=["trial result"], repeats=twin.number)
    with atomic_file(out_dir / "result.json") as tmp:
        tmp.write_text(json.dumps({"config": recorded.config, **record}, indent=2))
    return record
