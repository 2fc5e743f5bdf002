"""The multi-objective Optuna study as a worker process sees it.

Objectives: maximise validation accuracy of the exported ``.tflite`` and minimise its size
(optionally also its latency and TensorFlow Lite Micro's arena bytes, "ram"). A study runs
until it holds exactly ``trials`` finished (complete or pruned) trials, however many processes
share it and however often it is resumed; failed trials do not count and are retried.

Private modules, as Optuna splits its samplers: ``_sampler`` (the sampler factory),
``_identity`` (create or resume a study, seed each process), ``_objective`` (one trial),
``_loop`` (the trial loop and its failure policy), ``_liveness`` (dead workers' trials),
``_worker`` (the worker process) and ``_native`` (its C-library calls).
"""

from autocompress.search.study._identity import create_or_resume, library_versions
from autocompress.search.study._liveness import retry_dead_workers_trials
from autocompress.search.study._loop import MAX_FAILURES_IN_A_ROW, MAX_REPEATS_IN_A_ROW, work
from autocompress.search.study._objective import Objective
from autocompress.search.study._sampler import directions, make_sampler
from autocompress.search.study._worker import prepare, worker_main

__all__ = ["MAX_FAILURES_IN_A_ROW", "MAX_REPEATS_IN_A_ROW", "Objective", "create_or_resume", "directions",
           "library_versions", "make_sampler", "prepare", "retry_dead_workers_trials", "work",
           "worker_main"]
