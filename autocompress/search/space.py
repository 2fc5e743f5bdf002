"""The search space: a TOML file in, :class:`CompressionConfig` per Optuna trial out.

Each key of the ``[space]`` table is a knob of :class:`CompressionConfig` (plus ``distill``
and the pruning structure ``"none"``), given as

* a list: the choices (``quant = ["int8", "qat"]``);
* a table: a numeric range (``sparsity = { low = 0.3, high = 0.8, step = 0.1 }``, with
  optional ``log = true``);
* a scalar: a fixed value (``epochs = 6``).

Knobs that do not apply are not suggested: no temperature, alpha or assistant unless
``distill`` is true, no sparsity, scope or layers when the structure is ``"none"``, and 2:4
always uses sparsity 0.5. Discrete choices let trained students be reused across trials.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import FloatDistribution, IntDistribution

from autocompress.architectures import ARCHITECTURES, OWN_MODEL, is_user_family
from autocompress.compress.config import LAYER_SETS, QUANT_MODES, SCOPES, STRUCTURES, CompressionConfig
from autocompress.errors import UserError
from autocompress.search.budget import Rungs

KNOBS = {f.name for f in fields(CompressionConfig)} | {"distill"}
ALLOWED_CHOICES = {
    "student": (*ARCHITECTURES, OWN_MODEL), "prune_scope": SCOPES, "prune_structure": ("none", *STRUCTURES),
    "prune_layers": LAYER_SETS, "quant": QUANT_MODES, "distill": (True, False), "assistant": (True, False),
    "per_channel": (True, False), "strip_names": (True, False),
}
# studies/*.toml, reached through the autocompress/spaces link (a wheel holds copies of them there)
BUILTIN_SPACES = Path(__file__).resolve().parents[1] / "spaces"


@dataclass(frozen=True)
class Knob:
    """One dimension: fixed ``value``, categorical ``choices``, or a ``low``..``high`` range."""

    name: str
    value: Any = None
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices is not None:
            return self.choices[0] if len(self.choices) == 1 else trial.suggest_categorical(self.name, self.choices)
        if self.low is None:
            return self.value
        if isinstance(self.distribution(), IntDistribution):
            return trial.suggest_int(self.name, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def distribution(self) -> IntDistribution | FloatDistribution:
        """A range's Optuna distribution (whole numbers: an integer one); Optuna's ValueError if it
        cannot be one (a step <= 0, a log range from <= 0, a step with a log float range)."""
        if all(isinstance(v, int) for v in (self.low, self.high)) and (self.step is None or isinstance(self.step, int)):
            return IntDistribution(self.low, self.high, log=self.log, step=1 if self.step is None else self.step)
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)


def _knob(name: str, spec: Any, where: str) -> Knob:
    if name not in KNOBS:
        raise UserError(f"{where}: unknown key {name!r}; known keys: {', '.join(sorted(KNOBS))}")
    if isinstance(spec, list):
        if not spec:
            raise UserError(f"{where}: {name} has no choices; give at least one value")
        allowed = ALLOWED_CHOICES.get(name)
        bad = [v for v in spec if allowed is not None and v not in allowed
               and not (name == "student" and isinstance(v, str) and is_user_family(v))]
        if bad:
            raise UserError(f"{where}: {name} cannot be {bad[0]!r}; choose from {', '.join(map(str, allowed))}")
        return Knob(name, choices=tuple(spec))
    if isinstance(spec, dict):
        unknown = set(spec) - {"low", "high", "step", "log"}
        if unknown or not {"low", "high"} <= set(spec):
            raise UserError(f"{where}: {name} range needs low and high (and optionally step, log), got {sorted(spec)}")
        low, high = spec["low"], spec["high"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise UserError(f"{where}: {name} low and high must be numbers")
        if low > high:
            raise UserError(f"{where}: {name} has low {low} > high {high}; swap them")
        knob = Knob(name, low=low, high=high, step=spec.get("step"), log=bool(spec.get("log", False)))
        try:
            knob.distribution()
        except (ValueError, ArithmeticError) as error:  # Optuna's checks ("`step > 0` must hold"), decimal's
            reason = str(error) if isinstance(error, ValueError) else f"step {knob.step} is too fine"
            raise UserError(f"{where}: {name} range {spec} is not one Optuna can sample ({reason})") from None
        return knob
    return Knob(name, value=spec)


@dataclass(frozen=True)
class SearchSpace:
    """The knobs of a study, in the order they are suggested, and the budget allocator (an optional
    ``[budget]`` table: ``epochs = [15, 30, 60]``, ``eta = 2``; see :mod:`.budget`) that decides
    each proposed student's epochs in place of an ``epochs`` knob."""

    knobs: tuple[Knob, ...]
    budget: Rungs | None = None

    @classmethod
    def from_dict(cls, table: dict, where: str = "search space", budget: dict | None = None) -> "SearchSpace":
        if not isinstance(table, dict) or not table:
            raise UserError(f"{where}: needs a non-empty [space] table")
        rungs = None
        if budget is not None:
            unknown = set(budget) - {"epochs", "eta"}
            if unknown or "epochs" not in budget or "epochs" in table:
                raise UserError(f"{where}: [budget] takes epochs (a list) and eta, and replaces the epochs knob of "
                                f"[space]; got {sorted(budget)}")
            rungs = Rungs(tuple(budget["epochs"]) if isinstance(budget["epochs"], list) else (budget["epochs"],),
                          budget.get("eta", 2))
        space = cls(tuple(_knob(name, spec, where) for name, spec in table.items()), rungs)
        space.suggest(optuna.trial.FixedTrial(space.first_choices()))  # every fixed value must form a valid config
        return space

    @classmethod
    def load(cls, path: str | Path) -> "SearchSpace":
        path = Path(path)
        try:
            document = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"config file {path} does not exist; pass a TOML file with a [space] table") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise UserError(f"config file {path} is not valid TOML ({error}); fix the syntax") from None
        unknown = set(document) - {"space", "budget"}
        if unknown:
            raise UserError(f"config file {path}: unknown table(s) {', '.join(sorted(unknown))}; only [space] and "
                            "[budget] are read")
        return cls.from_dict(document.get("space", {}), where=f"config file {path}", budget=document.get("budget"))

    @classmethod
    def for_dataset(cls, dataset_name: str) -> "SearchSpace":
        """The built-in space for a dataset (``studies/<name>.toml``), else the generic one."""
        path = BUILTIN_SPACES / f"{dataset_name}.toml"
        return cls.load(path if path.exists() else BUILTIN_SPACES / "default.toml")

    @classmethod
    def for_model(cls) -> "SearchSpace":
        """The built-in space for ``--model`` (``studies/model.toml``): your model's compressed variants."""
        return cls.load(BUILTIN_SPACES / "model.toml")

    def without(self, name: str, value: Any, why: str) -> "SearchSpace":
        """This space with ``value`` no longer a choice of knob ``name`` (one line, ``why``, when
        nothing would be left)."""
        knobs = []
        for knob in self.knobs:
            if knob.name == name and value in (knob.choices or (knob.value,)):
                left = tuple(choice for choice in knob.choices or () if choice != value)
                if not left:
                    raise UserError(f"the space's only {name} is {value}, {why}; give it other choices")
                knob = Knob(name, choices=left) if len(left) > 1 else Knob(name, value=left[0])
            knobs.append(knob)
        return SearchSpace(tuple(knobs), self.budget)

    def first_choices(self) -> dict[str, Any]:
        params = {}
        for knob in self.knobs:
            if knob.choices is not None and len(knob.choices) > 1:
                params[knob.name] = knob.choices[0]
            elif knob.low is not None:
                params[knob.name] = knob.low
        return params

    def distils(self) -> bool:
        """Whether some configuration drawn from it distils (alpha below 1), so a search needs the teacher."""
        knobs = {k.name: k for k in self.knobs}
        switch, alpha = knobs.get("distill"), knobs.get("alpha")
        if switch is not None and True not in (switch.choices or (switch.value,)):
            return False
        if alpha is None:  # alpha stays 1: plain training
            return False
        return (alpha.low if alpha.low is not None else min(alpha.choices or (alpha.value,))) < 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, stored in the study to detect a changed space on resume.

        It leaves out every field equal to None, False, 0 or 0.0 (so ``low = 0`` and ``low = 0.0``
        read the same): that is the form studies' databases already hold (e.g. the built-in CIFAR-10
        space's ``assistant = false`` is stored as ``{}``); writing those fields now would refuse
        to resume every such study as "a different space"."""
        knobs = {k.name: {key: v for key, v in vars(k).items() if v not in (None, False) and key != "name"}
                 for k in self.knobs}
        return {**knobs, "[budget]": self.budget.to_dict()} if self.budget else knobs

    def suggest(self, trial: optuna.Trial) -> CompressionConfig:
        """Draw one configuration; inapplicable knobs are neither suggested nor recorded."""
        knobs = {k.name: k for k in self.knobs}
        draw = lambda name: knobs[name].suggest(trial) if name in knobs else None  # noqa: E731
        values: dict[str, Any] = {}
        for name in ("student", "width", "epochs", "finetune_epochs", "batch_size", "learning_rate", "seed", "quant",
                     "strip_names"):
            value = draw(name)
            if value is not None:
                values[name] = value
        if draw("distill") if "distill" in knobs else any(n in knobs for n in ("alpha", "temperature")):
            for name in ("temperature", "alpha", "assistant"):
                if name in knobs:
                    values[name] = draw(name)
        if values.get("quant") == "int8" and "per_channel" in knobs:
            values["per_channel"] = draw("per_channel")
        structure = draw("prune_structure") or "none"
        if structure != "none":
            values["prune_structure"] = structure
            if structure != "2:4":  # 2:4 prunes at 0.5: CompressionConfig's rule
                values["sparsity"] = draw("sparsity")
            for name in ("prune_scope", "prune_layers"):
                if name in knobs and not (name == "prune_scope" and structure == "2:4"):
                    values[name] = draw(name)
        elif "sparsity" in knobs and "prune_structure" not in knobs:
            values["sparsity"] = draw("sparsity")
        values = {k: v for k, v in values.items() if v is not None}
        return CompressionConfig(**values)
