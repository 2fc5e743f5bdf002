"""Which trial of a study to export: one by number, or one a rule picks on the study's Pareto front."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from autocompress.errors import UserError
from autocompress.search.front import front_trials


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
    front: bool = False  # every front point (of at most ``max_size``, when given) instead of one

    def __post_init__(self) -> None:
        if self.front:  # --max-size, if given, bounds the points
            one = (self.trial is None and self.pick is None and self.min_accuracy is None,
                   "--front exports every front point (up to --max-size, when given): drop --trial, --pick and "
                   "--min-accuracy")
        else:
            given = [value is not None for value in (self.trial, self.pick, self.max_size, self.min_accuracy)]
            one = (sum(given) == 1,
                   "choose the model with exactly one of --trial, --pick, --max-size or --min-accuracy, or --front")
        checks = [
            one,
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


def _feasible_front(study: optuna.Study) -> list[FrozenTrial]:
    front = front_trials(study)
    if not front:
        raise UserError(f"study {study.study_name!r} has no feasible trial (none meets its constraints); "
                        "export one by --trial N")
    return front


def choose_front(study: optuna.Study, selection: Selection) -> list[FrozenTrial]:
    """The front points a ``front`` selection takes: all of them, or those of at most ``max_size``; smallest first."""
    front = _feasible_front(study)
    if selection.max_size is None:
        return front
    _within_size(study, front, selection.max_size)  # one fits, or the error says which is smallest
    return [t for t in front if _size(t) <= selection.max_size]


def choose_trial(study: optuna.Study, selection: Selection) -> FrozenTrial:
    """The trial ``selection`` names; the rules other than ``trial`` look only at the Pareto front."""
    if selection.trial is not None:
        return completed_trial(study, selection.trial)
    front = _feasible_front(study)
    if selection.pick is not None:
        return PICKS[selection.pick](front)
    if selection.max_size is not None:
        return _within_size(study, front, selection.max_size)
    return _above_accuracy(study, front, selection.min_accuracy)
