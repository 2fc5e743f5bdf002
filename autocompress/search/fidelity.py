"""Multi-fidelity: stop a trial after a short training budget when it cannot reach the front.

Optuna's pruners do not support multi-objective studies, so the rule is ours. At the *rung*
(the end of the first third of the student's epochs) the student's float validation accuracy
is measured. The trial is stopped (``PRUNED``) when a completed trial with the same training
budget already dominates the best this trial could still do:

* its final validation accuracy is at least this trial's rung accuracy plus the largest gain
  any completed trial made after its own rung (an optimistic bound, learnt from the study,
  capped at 100%), and
* its size is no bigger than this trial's smallest possible file: its weights alone.

Until ``MIN_HISTORY`` completed trials have both numbers, nothing is stopped. A trial whose
student is already cached trains nothing, so it has no rung and runs in full. A trial whose
student was stopped at its rung before (the same student choices: training is seeded) is judged
on that rung accuracy before it trains anything, unless that student has since been trained in
full (a trial with a smaller possible size passed the rule) and is cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import optuna

from autocompress.compress.config import CompressionConfig
from autocompress.errors import UserError
from autocompress.search.record import TrialRecord


MIN_HISTORY = 3


def rung_epoch(epochs: int) -> int | None:
    """The epoch after which a student is judged, or None when its budget is too short to split."""
    return epochs // 3 if epochs >= 3 else None


@dataclass(frozen=True)
class Outcome:
    """What a completed trial showed: accuracy at its rung, final accuracy, final size."""

    number: int
    rung_accuracy: float
    val_accuracy: float
    size: float


def history(study: optuna.Study, epochs: int) -> list[Outcome]:
    """The completed trials that trained a student for ``epochs`` and passed a rung (size: .tflite bytes)."""
    outcomes = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        record = TrialRecord.of(trial)
        if record.rung_accuracy is not None and (record.config or {}).get("epochs") == epochs:
            outcomes.append(Outcome(trial.number, record.rung_accuracy, record.val_accuracy, record.tflite_bytes))
    return outcomes


def stopped_student(study: optuna.Study, config: CompressionConfig) -> tuple[int, float] | None:
    """(trial number, rung accuracy) of an earlier trial whose student, the same as ``config``'s,
    was stopped at its rung; None when there is none."""
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,)):
        record = TrialRecord.of(trial)
        if record.rung_accuracy is not None and record.rung_trial is None and \
                _student_choices(record) == config.student_choices():
            return trial.number, record.rung_accuracy
    return None


def _student_choices(record: TrialRecord) -> tuple | None:
    try:
        return CompressionConfig.from_dict(record.config or {}).student_choices()
    except UserError:  # a configuration recorded by another version
        return None


def dominating(outcomes: list[Outcome], rung_accuracy: float, min_size: float) -> Outcome | None:
    """A completed trial that beats this trial's optimistic outcome, if there is one."""
    if len(outcomes) < MIN_HISTORY:
        return None
    best_case = min(1.0, rung_accuracy + max(max(o.val_accuracy - o.rung_accuracy for o in outcomes), 0.0))
    beaten = [o for o in outcomes if o.val_accuracy >= best_case and o.size <= min_size]
    return max(beaten, key=lambda o: o.val_accuracy) if beaten else None


def rung_callback(epoch: int, x_val: np.ndarray, y_val: np.ndarray, judge: Callable[[float], None]):
    """A Keras callback that measures the student's validation accuracy at ``epoch`` and hands it
    to ``judge``, which raises :class:`optuna.TrialPruned` to stop the training there."""
    from autocompress._tf import keras
    from autocompress.training import keras_accuracy

    class Rung(keras.callbacks.Callback):
        def on_epoch_end(self, finished: int, logs=None) -> None:
            if finished + 1 == epoch:
                judge(keras_accuracy(self.model, x_val, y_val))

    return Rung()
