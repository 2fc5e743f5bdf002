"""One trial: suggest a configuration, check its predicted bounds, compress it (or reuse a
completed twin's result), record it, return the objectives."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import optuna

from autocompress.cache import key_of, trim
from autocompress.compress.config import CompressionConfig
from autocompress.compress.predict import predicted_arena_bytes, predicted_weight_bytes
from autocompress.errors import UselessTeacher, UserError
from autocompress.search import artifacts, fidelity, repeats
from autocompress.search import record as record_mod
from autocompress.search import storage as storage_mod
from autocompress.search.settings import SearchSettings
from autocompress.search.space import SearchSpace
from autocompress.search.study._identity import library_versions
from autocompress.search.study._native import release_memory


@dataclass
class Objective:
    """One trial: suggest a configuration, compress it (or take the result of a completed trial that
    ran it: :mod:`.repeats`), record everything, return the objectives."""

    settings: SearchSettings
    space: SearchSpace
    context: object  # autocompress.compress.pipeline.Context
    location: storage_mod.StudyLocation
    report: Callable[[str], None] | None = None  # hears a line per epoch of each student's training
    versions: dict = field(default_factory=library_versions)

    def __call__(self, trial: optuna.Trial):
        config = self.space.suggest(trial)
        if self.space.budget is not None:
            config = self.space.budget.allocate(config, trial.study)
        if self.settings.epochs is not None:
            config = CompressionConfig(**{**config.to_dict(), "epochs": min(config.epochs, self.settings.epochs),
                                          "finetune_epochs": min(config.finetune_epochs, self.settings.epochs)})
        dataset, own = self.context.dataset, self.context.own_model
        record_mod.write(trial.set_user_attr, config=config.to_dict(), label=config.label(), versions=self.versions)
        if self.settings.max_size is not None:
            _within(trial, "predicted_min_bytes", predicted_weight_bytes(config, dataset.input_shape, dataset.num_classes, own),
                    self.settings.max_size, "weights alone need", "--max-size")
        if self.settings.max_ram is not None:
            _within(trial, "predicted_min_arena_bytes", predicted_arena_bytes(config, dataset.input_shape,
                                                                              dataset.num_classes, own),
                    self.settings.max_ram, "the largest op's activations alone need", "--max-ram")
        out_dir = self.location.trial_dir(trial.number)
        try:
            record = self._repeated(trial, config, out_dir) or self._compressed(trial, config, out_dir)
        except optuna.TrialPruned:
            raise
        except Exception as error:  # the trial fails with its reason on record; the study goes on
            reason = f"{type(error).__name__}: {error}"[:500]
            if isinstance(error, UselessTeacher):
                record_mod.write(trial.set_user_attr, pruned_reason=reason)
                raise optuna.TrialPruned(str(error)) from None
            record_mod.write(trial.set_user_attr, fail_reason=reason)
            raise
        finally:
            if self.settings.cache_limit is not None:
                models = self.context.model_cache
                trim([models / "students", models / "pruned"], self.settings.cache_limit)
        record_mod.write(trial.set_user_attr, **record)
        record_mod.write(trial.set_user_attr, artifacts=artifacts.upload_files(
            trial, self.location, {kind: record[f"{kind}_path"] for kind in artifacts.FILES}))
        size = record["tflite_bytes"] if self.settings.size_metric == "tflite" else record["gzip_bytes"]
        if self.settings.max_size is not None:  # Optuna's convention: feasible when <= 0
            trial.set_constraint("max_size", size - self.settings.max_size)
        if self.settings.min_accuracy is not None:
            trial.set_constraint("min_accuracy", self.settings.min_accuracy - record["val_accuracy"])
        arena = record.get("arena_bytes")
        if self.settings.max_ram is not None:  # a file TFLite Micro cannot run fits no RAM budget
            trial.set_constraint("max_ram", math.inf if arena is None else arena - self.settings.max_ram)
        if arena is None and "ram" in self.settings.objectives:
            _pruned(trial, f"TFLite Micro cannot run it: {record.get('tflm_error')}")
        repeated = f" (as trial {record['repeats']})" if "repeats" in record else ""
        _save_note(trial, f"{config.label()}: {100 * record['val_accuracy']:.1f}% val, "
                          f"{100 * record['test_accuracy']:.1f}% test, {size / 1024:.1f} KB, "
                          f"arena {_kb(arena)}, {_millions(record.get('macs'))} MACs{repeated}")
        values = {"accuracy": record["val_accuracy"], "size": float(size), "latency": record["latency_ms"],
                  "ram": float(arena or 0)}
        return tuple(values[name] for name in self.settings.objectives)

    def _repeated(self, trial: optuna.Trial, config: CompressionConfig, out_dir: Path) -> dict | None:
        """The result of the completed trial that ran ``config`` already (see :mod:`.repeats`), if any."""
        from autocompress.compress import pipeline

        fingerprint = key_of(pipeline.run_key(config, self.context), self.versions)
        record_mod.write(trial.set_user_attr, fingerprint=fingerprint)
        twin = repeats.completed_twin(trial.study, fingerprint) if self.settings.reuses else None
        try:
            return repeats.copied_result(twin, self.location, out_dir) if twin else None
        except UserError:  # the twin's files are gone (a study folder copied without them): run it again
            return None

    def _compressed(self, trial: optuna.Trial, config: CompressionConfig, out_dir: Path) -> dict:
        """Compress ``config`` now (stopping at the multi-fidelity rung if it cannot reach the front)."""
        from autocompress.compress import pipeline

        dataset = self.context.dataset
        rung = fidelity.rung_epoch(config.epochs) if self.settings.stops_early else None
        callbacks = [fidelity.rung_callback(rung, dataset.x_val, dataset.y_val, self._judge(trial, config))
                     ] if rung else []
        earlier = fidelity.stopped_student(trial.study, config) if rung else None
        if earlier is not None and not pipeline.has_trained_student(config, self.context):
            # its student stopped at the rung before and was not trained in full since: judge it on that rung
            number, accuracy = earlier
            self._judge(trial, config, measured_in=number)(accuracy)
        watchers = []
        if self.report is not None:
            from autocompress.progress import EpochLines

            watchers.append(EpochLines(self.report, f"trial {trial.number}: {config.student} w{config.width:.2f} "
                                                    f"student ({config.epochs} epochs)"))
        release_memory()  # the earlier trials' models (a repeat or a trial stopped before training builds none)
        result = pipeline.run(config, self.context, out_dir, callbacks, watchers)
        return {key: value for key, value in result.to_dict().items() if key != "config"}

    def _judge(self, trial: optuna.Trial, config: CompressionConfig,
               measured_in: int | None = None) -> Callable[[float], None]:
        """Stop ``trial`` at its rung when a completed trial dominates its best case (judged on the
        rung accuracy its student had in trial ``measured_in``, when given)."""

        def judge(accuracy: float) -> None:
            record_mod.write(trial.set_user_attr, rung_accuracy=accuracy)
            dataset = self.context.dataset
            min_size = predicted_weight_bytes(config, dataset.input_shape, dataset.num_classes,
                                              self.context.own_model)
            winner = fidelity.dominating(fidelity.history(trial.study, config.epochs), accuracy,
                                         min_size)
            if winner is not None:
                measured = ""
                if measured_in is not None:
                    measured = f" (its student's, in trial {measured_in})"
                    record_mod.write(trial.set_user_attr, rung_trial=measured_in)
                reason = (f"multi-fidelity: {100 * accuracy:.1f}% after {fidelity.rung_epoch(config.epochs)} of "
                          f"{config.epochs} epochs{measured} cannot beat trial {winner.number} "
                          f"({100 * winner.val_accuracy:.1f}% at {winner.size:,.0f} B <= {min_size:,} B of weights)")
                record_mod.write(trial.set_user_attr, pruned_reason=reason)
                raise optuna.TrialPruned(reason)

        return judge


def _pruned(trial: optuna.Trial, reason: str) -> None:
    record_mod.write(trial.set_user_attr, pruned_reason=reason)
    raise optuna.TrialPruned(reason)


def _within(trial: optuna.Trial, attr: str, predicted: int, limit: int, what: str, flag: str) -> None:
    """Record the lower bound ``predicted`` as ``attr``; prune the trial when it exceeds ``limit``."""
    record_mod.write(trial.set_user_attr, **{attr: predicted})
    if predicted > limit:
        _pruned(trial, f"{what} {predicted} bytes > {flag} {limit}")


def _kb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1024:.1f} KB"


def _millions(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 1e6:.2f}M"


def _save_note(trial: optuna.Trial, text: str) -> None:
    import optuna_dashboard

    optuna_dashboard.save_note(trial, text)
