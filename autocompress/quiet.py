"""Drop what TensorFlow's and LiteRT's C++ code writes straight to file descriptor 2.

Their start-up and conversion lines (absl's "All log messages before absl::InitializeLog()",
oneDNN, "failed call to cuInit", "fully_quantize: 0, inference_type: 6", "Created TensorFlow Lite
XNNPACK delegate") bypass Python and ``TF_CPP_MIN_LOG_LEVEL``. Failures still surface as Python
exceptions. ``AUTOCOMPRESS_TF_LOGS=1`` keeps the lines (e.g. to see why a GPU is not used).
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_dropped():
    """Send file descriptor 2 to /dev/null for the block (unless ``AUTOCOMPRESS_TF_LOGS=1``)."""
    if os.environ.get("AUTOCOMPRESS_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
