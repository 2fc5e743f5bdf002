"""Where a study lives: its folder and its Optuna storage (its artifact store: :mod:`.artifacts`)."""

from __future__ import annotations

import contextlib
import copy
import random
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalStorage

from autocompress.errors import UserError
from autocompress.search.record import StudyRecord

HEARTBEAT_SECONDS = 30
OUTAGE_SECONDS = 300  # how long a search waits for an unreachable database server before it stops
STORAGE_ERRORS = (optuna.exceptions.StorageInternalError, sqlalchemy.exc.SQLAlchemyError)
_SCHEMA_ATTEMPTS = 5


@dataclass(frozen=True)
class StudyLocation:
    """A study's folder (outputs, artifacts, trial files) and its storage URL."""

    folder: Path
    storage_url: str

    @property
    def artifact_dir(self) -> Path:
        return self.folder / "artifacts"

    @property
    def trials_dir(self) -> Path:
        return self.folder / "trials"

    def trial_dir(self, number: int) -> Path:
        """Where trial ``number`` writes its files."""
        return self.trials_dir / f"{number:05d}"


def locate(study_name: str, out: str | Path | None = None, storage: str | None = None) -> StudyLocation:
    """``studies/<name>/`` (or ``out``) with its SQLite file unless ``storage`` names another."""
    folder = Path(out) if out else Path("studies") / study_name
    return StudyLocation(folder, storage or f"sqlite:///{(folder / 'study.db').as_posix()}")


def _is_journal(url: str) -> bool:
    return "://" not in url


def open_storage(location: StudyLocation, heartbeat: int = HEARTBEAT_SECONDS) -> optuna.storages.BaseStorage:
    """The Optuna storage for ``location``: RDB (SQLite, PostgreSQL, MySQL) with heartbeats, or a journal file.

    A running trial beats every ``heartbeat`` seconds; one whose process died (``kill -9``)
    stops, and after three missed beats it is marked FAIL and queued again (once).
    """
    url = location.storage_url
    if _is_journal(url):
        path = Path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as error:
            raise UserError(f"cannot open journal file {path} ({error.strerror}); pass a writable path") from None
    if not re.match(r"^[a-z][a-z0-9+]*://", url):
        raise UserError(f"storage {url!r} is not a URL; use sqlite:///path.db, postgresql://user@host/db "
                        "or a journal file path")
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(_SCHEMA_ATTEMPTS):
        try:
            return _rdb_storage(url, heartbeat)
        except ImportError:
            raise UserError(f"storage {url.split('://')[0]} needs its database driver; for PostgreSQL "
                            "pip install 'autocompress[postgres]' (psycopg)") from None
        except Exception as error:  # sqlalchemy's many connection errors
            if attempt < _SCHEMA_ATTEMPTS - 1 and _lost_schema_race(error):
                time.sleep(0.5 + random.random() * (attempt + 1))
                continue
            reason = str(error).strip().splitlines()[0][:200]
            raise UserError(f"cannot open storage {_redact(url)} ({type(error).__name__}: {reason}); "
                            "check the URL and that the database is running") from None
    raise AssertionError("unreachable")  # the last attempt returns or raises


def _lost_schema_race(error: Exception) -> bool:
    """Workers starting together on a new database race to create its tables; the losers see
    "table ... already exists" (SQLite, PostgreSQL) or a duplicate version row, and can simply retry."""
    text = type(error).__name__ + str(error)
    return "IntegrityError" in text or "already exists" in text


def rdb_backend(study: optuna.Study) -> RDBStorage | None:
    """``study``'s RDB storage, under the cache Optuna wraps it in; None for a journal file."""
    backend = getattr(study._storage, "_backend", study._storage)
    return backend if isinstance(backend, RDBStorage) else None


def reconnects(study: optuna.Study) -> bool:
    """Whether ``study`` lives on a database server, whose pooled connections reconnect after an outage."""
    backend = rdb_backend(study)
    return backend is not None and _on_server(backend.url)


def _on_server(url: str) -> bool:
    return not url.startswith("sqlite")


class Outage:
    """How long the storage has been failing: an outage is tolerated (``waits``) for ``OUTAGE_SECONDS``."""

    def __init__(self, waits: bool = True) -> None:
        self.waits = waits
        self.since: float | None = None

    def tolerates(self) -> bool:
        """Record a failure; whether to carry on (and retry later) rather than stop."""
        self.since = self.since or time.time()
        return self.waits and time.time() - self.since < OUTAGE_SECONDS

    def ended(self) -> None:
        self.since = None


def storage_reason(error: BaseException) -> str:
    """The first line of the database driver's reason behind a storage error."""
    cause = getattr(error.__cause__, "orig", None) or error.__cause__ or error
    return str(cause).splitlines()[0]


def _rdb_storage(url: str, heartbeat: int) -> RDBStorage:
    """Optuna's RDB storage; a database server's pooled connections are checked before each use, so a
    server restart (which drops them all) costs a reconnect, not the search (Optuna does so for MySQL only)."""
    server = {"engine_kwargs": {"pool_pre_ping": True}} if _on_server(url) else {}
    with experimental_allowed():
        return _BeatingThroughOutages(url, heartbeat_interval=heartbeat, grace_period=3 * heartbeat,
                                      heartbeat_stale_trial_callback=retry_callback(), **server)


class _BeatingThroughOutages(RDBStorage):
    """Optuna's RDB storage, whose heartbeat thread outlives an outage: Optuna's thread dies at the
    first beat the server does not take, and the trial, still training, would then go stale and be
    failed and run again by another worker."""

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except STORAGE_ERRORS:  # the next beat, once the server is back, records it
            pass


@contextlib.contextmanager
def experimental_allowed():
    """No ExperimentalWarning inside: heartbeats, their retry callback, metric names and the samplers
    we use are "experimental" in Optuna 5, and what we need."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


class Retry(RetryHeartbeatStaleTrialCallback):
    """Queue a failed trial again with the same parameters (once): after a stale heartbeat, or a dead
    worker. The retry inherits the trial's user attributes but not its fail reason or its worker,
    which the retry's own worker records when it starts (until then it must not look dead)."""

    NOT_INHERITED = ("fail_reason", "worker_host", "worker_pid", "worker_started")

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trial = copy.deepcopy(trial)
        trial.user_attrs = {key: value for key, value in trial.user_attrs.items() if key not in self.NOT_INHERITED}
        super().__call__(study, trial)


def retry_callback() -> Retry:
    with experimental_allowed():
        return Retry(max_retry=1)


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def load_study(study_name: str, out: str | Path | None = None, storage: str | None = None) -> tuple[optuna.Study, StudyLocation]:
    """An existing study, or a one-line error saying which studies exist. Given only ``storage``,
    the study's folder (artifacts, trial files) is the one its search recorded (``folder``)."""
    location = locate(study_name, out, storage)
    if storage is None and not (location.folder / "study.db").exists():
        raise UserError(f"no study {study_name!r} in {location.folder}; run autocompress search first "
                        "or pass --study-dir / --storage")
    backend = open_storage(location)
    names = [s.study_name for s in optuna.get_all_study_summaries(backend)]
    if study_name not in names:
        known = ", ".join(names) or "none"
        raise UserError(f"no study {study_name!r} in {_redact(location.storage_url)} (studies there: {known})")
    study = optuna.load_study(study_name=study_name, storage=backend)
    folder = StudyRecord.of(study).folder
    if out is None and storage is not None and folder is not None:
        location = StudyLocation(Path(folder), location.storage_url)
    return study, location
