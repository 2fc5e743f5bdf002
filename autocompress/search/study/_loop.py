"""The trial loop of one worker process, and when it stops: the study is done, a deadline passed,
its trials-per-process ran out, or the last trials all failed or all repeated."""

from __future__ import annotations

import time
from typing import Callable

import optuna
from optuna.trial import TrialState

from autocompress.errors import UserError
from autocompress.search.record import TrialRecord, write
from autocompress.search.settings import finished_or_running
from autocompress.search.storage import STORAGE_ERRORS, Outage, experimental_allowed, reconnects, storage_reason
from autocompress.search.study._liveness import retry_dead_workers_trials, this_process, worth_waiting_for
from autocompress.search.study._objective import Objective

MAX_FAILURES_IN_A_ROW = 5
MAX_REPEATS_IN_A_ROW = 20  # then the sampler finds nothing new in the space: say so rather than loop
WAIT_SECONDS = 2.0  # how often a worker with nothing left to start checks on others' running trials


def _surplus_guard(study: optuna.Study, target: int) -> Callable[[optuna.Trial], None]:
    """Raise inside a trial that another worker's concurrent trial already made surplus."""

    def check(trial: optuna.Trial) -> None:
        ahead = [t for t in finished_or_running(study) if t.number < trial.number]
        if len(ahead) >= target:
            write(trial.set_user_attr, surplus=True)
            raise optuna.TrialPruned("surplus: the study already had its trials when this one started")

    return check


def work(study: optuna.Study, objective: Objective, target: int, deadline: float | None = None,
         limit: int | None = None, run_started: float | None = None) -> bool:
    """Run trials until the study holds ``target`` counted trials (or ``deadline`` passes, or this
    process ran ``limit`` trials: repeats, which train nothing and so leak nothing, do not count).
    True when it stopped at ``limit`` with trials still to run.
    Failures in a row are counted among the trials started since ``run_started`` (this run's)."""
    guard = _surplus_guard(study, target)
    ran = 0
    taken: list[int] = []  # this worker's trials that another process finished meanwhile

    def guarded(trial: optuna.Trial):
        write(trial.set_user_attr, **this_process())
        guard(trial)
        values = objective(trial)
        if study._storage.get_trial(trial._trial_id).state.is_finished():
            taken.append(trial.number)
            raise RuntimeError("another process failed this trial meanwhile (its heartbeat went stale) "
                               "and queued it again")
        return values

    outage = Outage(waits=reconnects(study))  # a database server is waited for; SQLite (a full disk) is not
    while True:
        try:
            retry_dead_workers_trials(study)  # and this worker's own trial, if the storage dropped out as it ended
            counted = finished_or_running(study)
            if deadline is not None and time.time() >= deadline:
                return False
            if len(counted) >= target and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                if not worth_waiting_for(study, [t for t in counted if t.state == TrialState.RUNNING]):
                    return False
                # another worker's trial is still running: wait for it to end; if that worker dies, its
                # trial is retried here (at once on this host, else once its heartbeat goes stale)
                with experimental_allowed():
                    optuna.storages.fail_stale_trials(study)
                time.sleep(WAIT_SECONDS)
                continue
            if limit is not None and ran >= limit:
                return True
            ended = []
            try:
                study.optimize(guarded, n_trials=1, catch=(Exception,), callbacks=[lambda _, t: ended.append(t)])
            except ValueError:  # Optuna then fails to tell the finished trial; its retry is queued: go on
                if not taken:
                    raise
                taken.clear()
            ran += not (ended and TrialRecord.of(ended[-1]).repeats is not None)
            _stop_if_failing(study, run_started)
            _stop_if_repeating(study, run_started, target)
        except Exception as error:
            cause = _storage_error(error)
            if cause is None:
                raise
            if not outage.tolerates():
                raise UserError(f"the study's storage could not be written ({storage_reason(cause)}); free disk "
                                "space or fix the database, then rerun the same command to resume") from cause
            time.sleep(WAIT_SECONDS)
            continue
        outage.ended()


def _storage_error(error: BaseException | None) -> BaseException | None:
    """The storage error behind ``error``, if any: Optuna 5's trial loop turns one raised while it
    reads back the ended trial into an ``UnboundLocalError``, with the storage error as its context."""
    while error is not None:
        if isinstance(error, STORAGE_ERRORS):
            return error
        error = error.__cause__ or error.__context__
    return None


def _last_ended(study: optuna.Study, run_started: float | None, count: int) -> list[optuna.trial.FrozenTrial]:
    """The last ``count`` trials this run (started at ``run_started``) finished, oldest first."""
    return sorted((t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and t.datetime_complete
                   and (run_started is None or t.datetime_start.timestamp() >= run_started)),
                  key=lambda t: t.datetime_complete)[-count:]


def _stop_if_repeating(study: optuna.Study, run_started: float | None, target: int) -> None:
    """Stop the search when the sampler's last ``MAX_REPEATS_IN_A_ROW`` proposals this run all repeated
    a completed trial (repeats do not count towards ``--trials``: without this a small space loops)."""
    ended = _last_ended(study, run_started, MAX_REPEATS_IN_A_ROW)
    if len(ended) == MAX_REPEATS_IN_A_ROW and all(TrialRecord.of(t).repeats is not None for t in ended):
        raise UserError(f"the sampler proposed {MAX_REPEATS_IN_A_ROW} configurations in a row that the study "
                        f"already holds, so it stops at {len(finished_or_running(study))} distinct trials "
                        f"of {target}: widen the space (more choices), or ask for fewer --trials")


def _stop_if_failing(study: optuna.Study, run_started: float | None) -> None:
    """Stop the search when the last ``MAX_FAILURES_IN_A_ROW`` trials this run finished all failed
    (failures of an earlier run, whose cause the user may have fixed since, do not count)."""
    ended = _last_ended(study, run_started, MAX_FAILURES_IN_A_ROW)
    if len(ended) == MAX_FAILURES_IN_A_ROW and all(t.state == TrialState.FAIL for t in ended):
        reason = TrialRecord.of(ended[-1]).fail_reason or "see the trials' fail reasons"
        raise UserError(f"{MAX_FAILURES_IN_A_ROW} trials in a row failed (last: {reason}); "
                        "fix the cause and rerun the same command to resume")
