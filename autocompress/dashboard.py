"""Serve optuna-dashboard on a study's storage, with its artifact store so each trial's
``.tflite`` and ``.keras`` can be downloaded from the trial page."""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import optuna

from autocompress.errors import UserError
from autocompress.search.artifacts import AtomicArtifactStore
from autocompress.search.storage import load_study, locate, open_storage


@dataclass(frozen=True)
class Dashboard:
    """A dashboard ready to serve: the storage, the artifact store (if any) and where to listen."""

    storage: optuna.storages.BaseStorage
    artifact_store: AtomicArtifactStore | None
    host: str
    port: int
    study_id: int | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        page = f"/studies/{self.study_id}" if self.study_id is not None else ""
        return f"http://{host}:{self.port}/dashboard{page}"

    def run(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        import optuna_dashboard

        optuna_dashboard.run_server(self.storage, host=self.host, port=self.port, artifact_store=self.artifact_store)


def check_port(host: str, port: int) -> None:
    """UserError unless ``port`` on ``host`` can be listened on now."""
    if not 0 < port < 65536:
        raise UserError(f"--port must be in 1-65535 (got {port})")
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        raise UserError(f"cannot resolve --host {host!r}; use e.g. 127.0.0.1, localhost or 0.0.0.0") from None
    try:
        with socket.create_server(address, family=family):
            pass
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is already in use; pass another --port") from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"--host {host} is not an address of this machine; use 127.0.0.1 or 0.0.0.0") from None
        raise UserError(f"cannot listen on {host} port {port} ({os.strerror(error.errno or 0)}); "
                        "pass another --port or --host") from None


def prepare(study: str | None = None, study_dir: Path | None = None, storage: str | None = None,
            host: str = "127.0.0.1", port: int = 8080) -> Dashboard:
    """Open the study (or, with only ``storage``, every study in it) and check the port is free.

    The artifact store is the study folder's ``artifacts/`` (``study_dir``, default
    ``studies/<study>``); with only ``storage`` and no ``study_dir`` there are no downloads.
    """
    if study is None and storage is None:
        raise UserError("pass --study NAME (with --study-dir if not studies/NAME) or --storage URL")
    if study is not None:
        _, location = load_study(study, study_dir, storage)
        backend = open_storage(location)
        study_id = backend.get_study_id_from_name(study)
    else:
        location = locate("", study_dir, storage)
        backend, study_id = open_storage(location), None
        if not optuna.get_all_study_summaries(backend):
            raise UserError("that storage holds no study yet; run autocompress search first")
    folder_known = study is not None or study_dir is not None
    artifacts = location.artifact_dir
    store = AtomicArtifactStore(artifacts) if folder_known and artifacts.is_dir() else None
    check_port(host, port)
    return Dashboard(backend, store, host, port, study_id)

