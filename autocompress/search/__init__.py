"""The Optuna study: search space, storage, objective, Pareto front."""
