"""autocompress: find the smallest compressed image classifier that keeps the accuracy you need.

The public API is imported lazily, so that ``import autocompress`` (and ``--help``) stays fast
and TensorFlow loads only when a function that needs it is called.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_dataset": "autocompress.data",
    "list_datasets": "autocompress.api",
    "get_teacher": "autocompress.api",
    "compress": "autocompress.api",
    "CompressionConfig": "autocompress.compress.config",
    "Result": "autocompress.compress.config",
    "UserError": "autocompress.errors",
    "SearchSettings": "autocompress.search.settings",
    "run_search": "autocompress.search.supervisor",
}

__all__ = ["__version__", *_EXPORTS]

# ``compress`` names both the API function and the subpackage of compression stages. Python sets a
# subpackage as its parent's attribute when it is first imported, which would hide the function
# from ``from autocompress import compress`` once anything imported a stage. Importing the
# (light: a docstring) subpackage here and dropping that attribute leaves ``compress`` to
# ``__getattr__``, for good; ``autocompress.compress.<stage>`` modules still import as usual.
importlib.import_module("autocompress.compress")
del compress  # noqa: F821 - bound by the import above


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'autocompress' has no attribute {name!r}")
