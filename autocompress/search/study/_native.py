"""The two C-library calls of a worker process, each a no-op where the platform lacks it."""

from __future__ import annotations

import ctypes
import gc


def release_memory() -> None:
    """Free the last trial's models and objects and hand the freed heap back to the OS (glibc
    keeps freed pages otherwise). tf-keras still keeps some memory per fit (docs/BENCHMARKS.md):
    hence the worker processes of :mod:`autocompress.search.supervisor`."""
    from autocompress._tf import keras

    keras.backend.clear_session()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when its supervisor dies (even by ``kill -9``)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):  # not Linux: workers then outlive a killed supervisor
        pass
