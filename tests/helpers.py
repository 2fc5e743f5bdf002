"""What the tests share: tiny learnable bar images, the search spaces the CLI tests search, the one
CLI runner, study access, the shared tiny study (searched once per session by the ``tiny_study``
fixture in conftest.py) and headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[1]
_TINY_CNN = """
[space]
student = "cnn"
width = [0.25, 0.5]
epochs = 2
finetune_epochs = 1
batch_size = 32
prune_structure = ["none", "channel"]
sparsity = { low = 0.3, high = 0.5, step = 0.1 }
"""
# The shared tiny study's space: pruning and three quantizations (one float), converted the default
# way (with names and a signature), as a user's files are: the export, report and dashboard tests read them.
STUDY_SPACE = _TINY_CNN + 'quant = ["int8", "none", "float16"]\n'
# The space most CLI search tests search: distillation on and off, pruning, two quantizations; files
# without names and signature, as every built-in space writes them.
SEARCH_SPACE = _TINY_CNN + """strip_names = true
distill = [true, false]
temperature = 4.0
alpha = 0.5
quant = ["int8", "float16"]
"""


def bar_images(n: int, size: int = 16, channels: int = 1, classes: int = 3, seed: int = 0):
    """``n`` noisy images: class 0 a horizontal bar, 1 a vertical bar, 2 both."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.integers(0, 60, (n, size, size, channels))
    for i, label in enumerate(y):
        row, column = rng.integers(2, size - 2, 2)
        if label in (0, 2):
            x[i, row, :, :] = rng.integers(180, 256, (size, channels))
        if label in (1, 2):
            x[i, :, column, :] = rng.integers(180, 256, (size, channels))
    return x.astype(np.uint8), y.astype(np.int64)


def write_bar_npz(path: Path, train: int = 600, test: int = 200, **kwargs) -> Path:
    x_train, y_train = bar_images(train, seed=1, **kwargs)
    x_test, y_test = bar_images(test, seed=2, **kwargs)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def cli_command(*args: object) -> list[str]:
    """The command line of ``autocompress ARGS`` as a user types it (run with this interpreter)."""
    return [sys.executable, "-m", "autocompress", *map(str, args)]


def search_command(dataset: Path, space: Path, cache: Path, out: Path, *extra: object) -> list[str]:
    """``autocompress search`` of ``dataset`` over the space file ``space`` into ``out``, quietly."""
    return cli_command("search", "--dataset", dataset, "--config", space, "--cache-dir", cache, "--quiet",
                       "--out", out, *extra)


def run_cli(*args: object, timeout: float = 900, cwd: Path = REPO, check: bool = False) -> subprocess.CompletedProcess:
    """``autocompress ARGS`` in a subprocess (from ``cwd``), as a user runs it; ``check``: fail the
    test with the command's stderr unless it exits 0."""
    shell = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # pytest-xdist's workers set
    # them (to 80 and 24); a user's shell does not export them to a command whose output goes to a file or a pipe
    env = {**shell, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr[-3000:]}")
    return result


def open_study(where: Path | str, name: str = "bars"):
    """The study ``name`` in a study folder's ``study.db`` (a Path) or at a storage URL (a str), opened as
    a search opens it (a new database's tables may be being created by the search meanwhile)."""
    import optuna

    from autocompress.search import storage as storage_mod

    url = where if isinstance(where, str) else f"sqlite:///{Path(where) / 'study.db'}"
    backend = storage_mod.open_storage(storage_mod.StudyLocation(Path(where), url))
    return optuna.load_study(study_name=name, storage=backend)


def counted_trials(study) -> list:
    """The completed trials that count towards ``--trials``: not repeats (which take a completed twin's
    result); checks that every repeat names a counted trial."""
    from optuna.trial import TrialState

    complete = study.get_trials(states=(TrialState.COMPLETE,))
    counted = [t for t in complete if "repeats" not in t.user_attrs]
    numbers = {t.number for t in counted}
    assert all(t.user_attrs["repeats"] in numbers for t in complete if "repeats" in t.user_attrs)
    return counted


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]



@dataclass(frozen=True)
class TinyStudy:
    """A finished 3-trial study of the bar data: its folder, the npz it was searched on, the cache."""

    folder: Path
    dataset: Path
    cache: Path
    name: str = "bars"

    def load(self):
        from autocompress.search.storage import load_study

        return load_study(self.name, self.folder)[0]

    def copy(self, destination: Path) -> "TinyStudy":
        """A private copy (for tests that damage it)."""
        shutil.copytree(self.folder, destination)
        return TinyStudy(destination, self.dataset, self.cache, self.name)


def trials_while_searching(folder: Path, state, name: str = "bars") -> list:
    """The trials in ``state`` of a study another process is creating or searching right now: none
    until its storage and study exist (read through the library's opener, which tolerates the
    schema-creation race that a plain ``optuna.load_study`` would lose)."""
    from autocompress.errors import UserError
    from autocompress.search.storage import load_study

    try:
        study = load_study(name, folder)[0]
    except UserError:  # no database or no study yet
        return []
    return study.get_trials(deepcopy=False, states=(state,))


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2 and exactly one ``error:`` line (containing ``fragments``), no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def search_tiny_study(root: Path, bar_npz: Path, session_cache: Path) -> TinyStudy:
    """Search 3 trials of a tiny space on the bar data (about a minute) into ``root/study``."""
    (root / "space.toml").write_text(STUDY_SPACE)
    result = run_cli("search", "--dataset", bar_npz, "--trials", 3, "--config", root / "space.toml",
                     "--out", root / "study", "--cache-dir", session_cache, "--seed", 1, "--quiet",
                     "--teacher-epochs", 1, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return TinyStudy(root / "study", Path(bar_npz), Path(session_cache))


def chromium(tmp_path: Path, width: int = 1400, height: int = 1000):
    """A headless Chromium WebDriver (skips the test when Chromium or its driver is not installed)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            pytest.skip(f"{path} is not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def wait_for(driver, condition, timeout: float = 30.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def tflite_docs_accuracy(model_path: str, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy as TensorFlow's post-training integer quantization tutorial measures it, knowing only
    that the model takes the images' values: a quantized input gets ``x / scale + zero_point``."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=model_path)
    interpreter.allocate_tensors()
    input_details, output_details = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    correct = 0
    for image, label in zip(images, labels):
        if input_details["dtype"] in (np.uint8, np.int8):
            input_scale, input_zero_point = input_details["quantization"]
            image = image / input_scale + input_zero_point
        interpreter.set_tensor(input_details["index"], np.expand_dims(image, axis=0).astype(input_details["dtype"]))
        interpreter.invoke()
        correct += int(interpreter.get_tensor(output_details["index"])[0].argmax() == label)
    return correct / len(labels)
