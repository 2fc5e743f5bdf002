"""File safety, the one home for it: atomic writes, content hashes and keys, cache trimming.

A reader never sees a half-written file or folder: writers fill a temporary sibling and
``os.replace`` it into place, so a crash (even ``kill -9``) leaves either the old state or
the new one. Two writers racing on the same key both succeed; the first one's result stays
(an export, which replaces an earlier one, asks for ``replace=True``). A temporary names its
writer (host and pid), so :func:`sweep_temporaries` can delete those a dead writer left.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

_TEMPORARY = re.compile(r"^\..+\.tmp@(?P<host>[^@]+)@(?P<pid>\d+)@")


def _temporary_prefix(target: Path, kind: str = "") -> str:
    """The start of a temporary's name beside ``target``: hidden, and naming its writer."""
    return f".{target.name}.{kind}tmp@{socket.gethostname()}@{os.getpid()}@"


@contextlib.contextmanager
def atomic_directory(target: Path, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; move it to ``target`` once the block succeeds.
    A folder already at ``target`` stays (another writer got there first), unless ``replace``:
    then it is swapped out and deleted."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if replace and target.exists():
            old = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target, "old."), dir=target.parent))
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
            return
        try:
            os.replace(tmp, target)
        except OSError:  # another writer got there first: keep theirs
            if not target.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it to ``target`` once the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; give the usual mode
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def exclusive(target: Path) -> Iterator[None]:
    """Hold an exclusive lock named after ``target`` (an ``flock`` on a hidden sibling), waiting for
    another process that holds it: two searches that need the same teacher train it once."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.with_name(f".{target.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sweep_temporaries(*folders: Path) -> list[Path]:
    """Delete the temporaries below ``folders`` whose writer, a process of this host, is gone (a
    ``kill -9`` mid-write leaves one); another host's, and a live writer's, stay. The paths deleted."""
    host, swept = socket.gethostname(), []
    for folder in folders:
        for path in Path(folder).rglob(".*"):
            match = _TEMPORARY.match(path.name)
            if not match or match["host"] != host or pid_alive(int(match["pid"])):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            swept.append(path)
    return swept


_SCRATCH_PID = re.compile(r"^autocompress-[a-z]+@[^@]+@(?P<pid>\d+)@")


@contextlib.contextmanager
def scratch_folder(kind: str) -> Iterator[Path]:
    """A temporary folder in the system's temporary directory for this process's ``kind`` of work
    (``run``, ``tflm``, ``vela``), named after its host and pid, deleted when the block ends. Those a
    killed process of this host left (``kill -9`` skips the deletion) are deleted first."""
    host = socket.gethostname()
    for path in Path(tempfile.gettempdir()).glob(f"autocompress-{kind}@{host}@*"):
        match = _SCRATCH_PID.match(path.name)
        if match and not pid_alive(int(match["pid"])):
            shutil.rmtree(path, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=f"autocompress-{kind}@{host}@{os.getpid()}@") as folder:
        yield Path(folder)


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (a reused pid counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _read_into(digest, path: Path) -> None:
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, in full (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    _read_into(digest, Path(path))
    return digest.hexdigest()


def content_hash(path: Path, length: int = 16) -> str:
    """sha256 of a file's name and bytes, or of every file (name and bytes) below a folder."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        _read_into(digest, file)
    return digest.hexdigest()[:length]


def text_hash(text: str, length: int = 16) -> str:
    """The first ``length`` hex digits of the sha256 of ``text``."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def key_of(*parts: object, length: int = 16) -> str:
    """A short stable hash of ``parts`` (their ``repr``)."""
    return text_hash(repr(parts), length)


def trim(folders: Iterable[Path], max_bytes: int) -> list[str]:
    """Delete the least recently used entries below ``folders`` until they hold at most ``max_bytes``.

    Files sharing a name up to the first dot (a model and its notes) go together; files being
    written (dot-prefixed temporaries) are left alone. Returns the names removed.
    """
    groups: dict[Path, list[os.stat_result]] = {}
    for folder in folders:
        for path in Path(folder).glob("[!.]*"):
            try:
                groups.setdefault(path.parent / path.name.split(".")[0], []).append(path.stat())
            except FileNotFoundError:  # another worker trimmed it meanwhile
                continue
    total = sum(st.st_size for stats in groups.values() for st in stats)
    removed = []
    for stem, stats in sorted(groups.items(), key=lambda item: max(st.st_mtime for st in item[1])):
        if total <= max_bytes:
            break
        for path in stem.parent.glob(f"{stem.name}.*"):
            path.unlink(missing_ok=True)
        total -= sum(st.st_size for st in stats)
        removed.append(stem.name)
    return removed
