"""Optuna's samplers as a search names them, and the study's directions."""

from __future__ import annotations

import optuna

from autocompress.search.storage import experimental_allowed


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """Optuna's samplers; constraints reach them through ``trial.set_constraint``."""
    with experimental_allowed():
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8)
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=16)
        if name == "nsga3":
            return optuna.samplers.NSGAIIISampler(seed=seed, population_size=16)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
        return optuna.samplers.RandomSampler(seed=seed)


def directions(objectives: tuple[str, ...]) -> list[str]:
    return ["maximize" if name == "accuracy" else "minimize" for name in objectives]
