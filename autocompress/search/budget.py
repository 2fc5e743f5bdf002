"""Who decides how long a student trains: successive halving across students (ASHA-style rungs).

The sampler proposes *what* to try (the student family, width and distillation, then pruning and
quantization); this allocator decides *how many epochs* the proposed student gets, from a ladder
of budgets (``[budget] epochs = [15, 30, 60, 120]`` in a space file, each ``eta`` times the last):

* a student never trained gets the first rung;
* a student trained up to rung ``k`` is promoted to rung ``k + 1`` when it ranks among the best
  ``1 / eta`` of the students that reached rung ``k``, and fewer than that many were promoted
  already; otherwise it stays at rung ``k`` (its trained model is cached: the trial only prunes,
  quantizes and measures);
* students are ranked at a rung by their best completed trial there: first by Pareto rank among
  all completed trials at that rung (accuracy up, size down: the front at equal budget), then by
  accuracy.

So many students train briefly, few train long, and the long ones are those on or near the
front. A promoted student continues its cached training (:func:`autocompress.compress.pipeline.train_student`):
it never repeats its first epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import optuna
from optuna.trial import FrozenTrial, TrialState

from autocompress.compress.config import CompressionConfig
from autocompress.errors import UserError
from autocompress.search.record import TrialRecord


@dataclass(frozen=True)
class Rungs:
    """The ladder of training budgets (epochs, increasing) and the promotion ratio ``eta``."""

    epochs: tuple[int, ...]
    eta: int = 2

    def __post_init__(self) -> None:
        if not self.epochs or any(not isinstance(e, int) or e < 1 for e in self.epochs) or \
                list(self.epochs) != sorted(set(self.epochs)):
            raise UserError(f"[budget] epochs must be increasing whole numbers >= 1 (got {list(self.epochs)})")
        if not isinstance(self.eta, int) or self.eta < 2:
            raise UserError(f"[budget] eta must be a whole number >= 2 (got {self.eta!r})")

    def allocate(self, config: CompressionConfig, study: optuna.Study) -> CompressionConfig:
        """``config`` with the epochs its student earns now (see the module's rules)."""
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        trials = [(t, recorded) for t in completed if t.values and (recorded := TrialRecord.of(t).config) is not None]
        student = _student(config.to_dict())
        reached = [i for i, epochs in enumerate(self.epochs)
                   if any(_student(recorded) == student and recorded["epochs"] == epochs for _, recorded in trials)]
        if not reached:
            return replace(config, epochs=self.epochs[0])
        rung = max(reached)
        if rung + 1 < len(self.epochs) and self._promotable(student, rung, trials):
            rung += 1
        return replace(config, epochs=self.epochs[rung])

    def _promotable(self, student: tuple, rung: int, trials: list[tuple[FrozenTrial, dict]]) -> bool:
        """``trials``: the completed trials with their recorded configurations."""
        at_rung = [(t, recorded) for t, recorded in trials if recorded["epochs"] == self.epochs[rung]]
        ranks = _pareto_ranks([(t.values[0], t.values[1]) for t, _ in at_rung])
        best: dict[tuple, tuple] = {}
        for (trial, recorded), rank in zip(at_rung, ranks):
            key = _student(recorded)
            best[key] = min(best.get(key, (rank, 0.0)), (rank, -trial.values[0]))
        quota = len(best) // self.eta
        promoted = {_student(recorded) for _, recorded in trials if recorded["epochs"] == self.epochs[rung + 1]}
        leaders = sorted(best, key=best.get)[:quota]
        return student in leaders and len(promoted & set(best)) < quota

    def to_dict(self) -> dict:
        return {"epochs": list(self.epochs), "eta": self.eta}


def _student(config: dict) -> tuple:
    """What identifies a trained student apart from its budget (as the student cache sees it)."""
    values = CompressionConfig.from_dict(config).student_choices()
    return values[:3] + values[4:]  # student_choices without the epochs


def _pareto_ranks(points: list[tuple[float, float]]) -> list[int]:
    """0 for the (accuracy up, size down) front, 1 for the front of the rest, and so on."""
    ranks = [-1] * len(points)
    left, rank = set(range(len(points))), 0
    while left:
        front = {i for i in left if not any(_dominates(points[j], points[i]) for j in left if j != i)}
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] >= b[0] and a[1] <= b[1] and a != b
