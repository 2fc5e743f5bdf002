"""Which process runs a trial, and whether it still does: a dead worker's trial is retried at once."""

from __future__ import annotations

import datetime
import functools
import os
import socket
from pathlib import Path

import optuna
from optuna.trial import TrialState

from autocompress.cache import pid_alive
from autocompress.search import storage as storage_mod
from autocompress.search.record import TrialRecord, write


def this_process() -> dict[str, object]:
    """Who runs a trial: recorded when it starts, so that a later run can tell its worker died."""
    return {"worker_host": socket.gethostname(), "worker_pid": os.getpid(),
            "worker_started": _process_start(os.getpid())}


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), which tells a reused pid apart; None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def retry_dead_workers_trials(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials whose worker ran on this host and is gone (``kill -9``, a crash) and
    queue each again with the same parameters, as a stale heartbeat would, but at once. Called
    between trials, it does the same for this process's own RUNNING trial, which a storage outage
    left unended, and for a trial that no worker claimed within :func:`claim_seconds` of its start
    (the storage dropped out, or its process was killed, between creating it and recording who runs
    it: it has no heartbeat either, so nothing else would ever end it). A trial of another live
    process, or of another host, is left to finish or to go stale. The failed trials' numbers."""
    host, failed = socket.gethostname(), []
    me = this_process()
    grace = claim_seconds(study)
    unclaimed_since = datetime.datetime.now() - datetime.timedelta(seconds=grace)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        record = TrialRecord.of(trial)
        mine = (record.worker_pid, record.worker_started) == (me["worker_pid"], me["worker_started"])
        worker = f"pid {record.worker_pid} on {host}"
        if record.worker_pid is None:
            if trial.datetime_start is None or trial.datetime_start > unclaimed_since:
                continue  # its worker is still recording itself
            reason = f"no worker recorded itself running it within {grace} s of its start"
        elif record.worker_host != host or (not mine and _alive(record.worker_pid, record.worker_started)):
            continue
        else:
            reason = f"the storage could not be reached as it ended ({worker})" if mine else f"its worker ({worker}) died"
        storage = study._storage
        try:
            write(functools.partial(storage.set_trial_user_attr, trial._trial_id), fail_reason=reason)
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:  # another process failed it first
            continue
        storage_mod.retry_callback()(study, storage.get_trial(trial._trial_id))
        failed.append(trial.number)
    return failed


def worth_waiting_for(study: optuna.Study, running: list[optuna.trial.FrozenTrial]) -> bool:
    """Whether some of ``running`` (others' trials) will end or be retried: a trial on this host is
    watched through its process, one elsewhere through its heartbeat (a journal file has none), one
    that no worker claimed through its age (:func:`retry_dead_workers_trials`)."""
    beats = _heartbeat_interval(study) is not None
    return any(beats or TrialRecord.of(t).worker_host in (socket.gethostname(), None) for t in running)


def claim_seconds(study: optuna.Study) -> int:
    """How long after its start a RUNNING trial without a recorded worker is taken for orphaned: the
    storage's grace period for stale heartbeats (a worker records itself within seconds)."""
    return 3 * (_heartbeat_interval(study) or storage_mod.HEARTBEAT_SECONDS)


def _heartbeat_interval(study: optuna.Study) -> int | None:
    backend = storage_mod.rdb_backend(study)
    return backend.get_heartbeat_interval() if backend is not None else None


def _alive(pid: int, started: str | None) -> bool:
    """Whether process ``pid``, started at ``started`` (see :func:`_process_start`), still runs.
    Without ``started`` (not Linux, or a worker still recording itself: it writes its pid first)
    only the pid is checked."""
    if started is not None:  # Linux: the start time also tells a reused pid apart
        return _process_start(pid) == started
    return pid_alive(pid)
