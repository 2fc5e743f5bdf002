"""The ``autocompress`` command: a thin typer layer over the Python API.

Every command parses its options, calls one API function and prints with rich. A
:class:`UserError` becomes ``error: <message>`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

from autocompress import _cli_run, _cli_study  # noqa: F401 - they register the commands, in this order
from autocompress._cli_base import INTERRUPTED, app, errors
from autocompress.errors import TrainingFailed, UserError

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit code 2."""
    try:
        app()
    except (UserError, TrainingFailed) as error:  # a diverged or collapsed training says what to try
        errors.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        errors.print(INTERRUPTED, markup=False)
        sys.exit(130)
