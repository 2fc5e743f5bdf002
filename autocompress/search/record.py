"""What a trial and a study record, as Optuna user attributes: one typed record each, written
through :func:`write` / :func:`write_study` and read through :meth:`TrialRecord.of` /
:meth:`StudyRecord.of`. The attribute names are those studies' databases already hold; what a
trial (or an older version) did not write reads as None."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable

import optuna

from autocompress.compress.config import Result


@dataclass(frozen=True)
class TrialRecord:
    """One trial's user attributes."""

    # suggested and checked before anything is trained
    config: dict | None = None  # CompressionConfig.to_dict()
    label: str | None = None
    versions: dict | None = None  # library versions
    fingerprint: str | None = None  # what a repeat of this configuration shares (:mod:`.repeats`)
    predicted_min_bytes: int | None = None  # weights alone (--max-size)
    predicted_min_arena_bytes: int | None = None  # the largest op's activations (--max-ram)
    # who runs it (a retry's own worker writes these again)
    worker_host: str | None = None
    worker_pid: int | None = None
    worker_started: str | None = None
    # how it went
    rung_accuracy: float | None = None  # multi-fidelity (:mod:`.fidelity`)
    rung_trial: int | None = None  # the trial whose student's rung accuracy judged this one
    pruned_reason: str | None = None
    fail_reason: str | None = None
    surplus: bool | None = None  # another worker's trial already completed the study
    repeats: int | None = None  # the completed trial whose result this one took
    artifacts: dict | None = None  # artifact id by kind ("tflite", "keras")
    # measured on the exported file: Result's fields but its config, and its efficiency (see MEASURED)
    dataset: str | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    tflite_bytes: int | None = None
    gzip_bytes: int | None = None
    params: int | None = None
    nonzero_params: int | None = None
    sparsity: float | None = None
    layer_sparsity: dict | None = None
    latency_ms: float | None = None
    stage_seconds: dict | None = None
    input_contract: dict | None = None
    tflite_path: str | None = None
    keras_path: str | None = None
    teacher: str | None = None
    notes: list | None = None
    reused: list | None = None
    precision: str | None = None
    arena_bytes: int | None = None
    macs: int | None = None
    tflm_agreement: float | None = None
    tflm_error: str | None = None
    npu: str | None = None
    npu_ms: float | None = None
    npu_cycles: int | None = None
    npu_sram_bytes: int | None = None
    npu_cpu_operators: int | None = None
    npu_error: str | None = None
    efficiency: float | None = None

    @classmethod
    def of(cls, trial: optuna.trial.FrozenTrial) -> "TrialRecord":
        attrs = trial.user_attrs
        return cls(**{name: attrs.get(name) for name in TRIAL_FIELDS})

    def measured(self) -> dict[str, Any]:
        """What compressing the configuration measured (a repeat copies exactly this)."""
        return {name: getattr(self, name) for name in MEASURED}


TRIAL_FIELDS = frozenset(f.name for f in fields(TrialRecord))
MEASURED = (*(f.name for f in fields(Result) if f.name != "config"), "efficiency")
assert set(MEASURED) <= TRIAL_FIELDS, "TrialRecord lacks a field of Result"


def write(set_attr: Callable[[str, Any], None], **values: Any) -> None:
    """Record ``values`` (fields of :class:`TrialRecord`) with ``set_attr``: a trial's
    ``set_user_attr``, or a storage's ``set_trial_user_attr`` bound to a trial id."""
    _set(set_attr, TrialRecord, values)


def _set(set_attr: Callable[[str, Any], None], record: type, values: dict[str, Any]) -> None:
    unknown = sorted(set(values) - {f.name for f in fields(record)})
    if unknown:
        raise TypeError(f"not fields of {record.__name__}: {', '.join(unknown)}")
    for name, value in values.items():
        set_attr(name, value)


@dataclass(frozen=True)
class StudyRecord:
    """What a search records about its study when it creates it."""

    search: dict | None = None  # the identity a resumed search must match: dataset, space, objectives, size_metric
    dataset: str | None = None  # the identity's entries again, one by one, for the dashboard
    space: dict | None = None
    objectives: list | None = None
    size_metric: str | None = None
    versions: dict | None = None
    data_source: dict | None = None  # where the search read its data: {"dataset", "data_dir"}
    folder: str | None = None  # the study folder, found again from --storage alone
    model: dict | None = None  # --model: its file's content hash and input scaling (part of the identity)

    @classmethod
    def of(cls, study: optuna.Study) -> "StudyRecord":
        attrs = study.user_attrs
        return cls(**{f.name: attrs.get(f.name) for f in fields(cls)})

    def searched(self, key: str) -> Any:
        """One entry of the search's identity (None when the study has none)."""
        return (self.search or {}).get(key)


def write_study(study: optuna.Study, **values: Any) -> None:
    """Record ``values`` (fields of :class:`StudyRecord`) in ``study``."""
    _set(study.set_user_attr, StudyRecord, values)
