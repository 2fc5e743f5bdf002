"""Decoded datasets cached as .npz, keyed by the source's path, sizes and modification times.

A changed source gets a new key, so it is never served stale; the entry it replaces is deleted.
Entries are written to a temporary file in the same folder and renamed into place, so a reader
never sees half a file. Caching is best effort: a cache that cannot be written only warns.
"""

from __future__ import annotations

import contextlib
import glob
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from autocompress.cache import atomic_file, text_hash
from autocompress.data._errors import reason
from autocompress.data.formats import SPLIT_KEYS, Arrays, read_npz
from autocompress.errors import UserError

CACHE_FORMAT = 1  # bump when a reader's output changes, to retire old entries


def default_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, else ``$AUTOCOMPRESS_CACHE_DIR``, else ``~/.cache/autocompress``."""
    chosen = cache_dir or os.environ.get("AUTOCOMPRESS_CACHE_DIR") or Path.home() / ".cache" / "autocompress"
    return Path(chosen).expanduser()


def source_state(path: Path) -> str:
    """A key that changes when the file at ``path``, or any file under the folder ``path``, changes."""
    entries = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    lines = [f"format {CACHE_FORMAT}"]
    for entry in entries:
        st = entry.stat()
        lines.append(f"{entry.relative_to(path) if entry != path else ''}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}")
    return text_hash("\n".join(lines))


def entry_path(cache_dir: Path, source: Path) -> Path:
    """Where the cached copy of ``source`` in its current state lives."""
    return cache_dir / "datasets" / f"{_slug(source)}-{source_state(source)}.npz"


def _slug(source: Path) -> str:
    """The per-source part of an entry's name: readable stem plus a hash of the absolute path."""
    return f"{source.name.split('.')[0] or 'dataset'}-{text_hash(str(source.resolve()))[:8]}"


def cached(source: Path, cache_dir: Path, read: Callable[[Path], Arrays]) -> Arrays:
    """``read(source)``, from the cache when it holds the source's current state, else read and stored."""
    entry = entry_path(cache_dir, source)
    if entry.is_file():
        try:
            return read_npz(entry)
        except UserError:
            pass  # a damaged entry is rebuilt below
    arrays = read(source)
    try:
        _write_atomic(entry, arrays)
    except OSError as e:
        warnings.warn(
            f"could not write the dataset cache {entry} ({reason(e)}); the next load decodes again", stacklevel=2
        )
        return arrays
    for stale in entry.parent.glob(f"{glob.escape(_slug(source))}-*.npz"):
        if stale != entry:
            with contextlib.suppress(OSError):
                stale.unlink()
    return arrays


def _write_atomic(entry: Path, arrays: Arrays) -> None:
    with atomic_file(entry) as tmp, open(tmp, "wb") as f:
        names = {} if arrays.class_names is None else {"class_names": np.array(arrays.class_names, dtype=str)}
        np.savez(f, **{key: getattr(arrays, key) for key in SPLIT_KEYS}, **names)
