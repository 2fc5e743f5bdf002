"""A real tiny study shared by the export, report and dashboard tests (searched once per session
by the ``tiny_study`` fixture in conftest.py), and helpers to drive the CLI and headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[1]
SPACE = """
[space]
student = "cnn"
width = [0.25, 0.5]
epochs = 2
finetune_epochs = 1
batch_size = 32
prune_structure = ["none", "channel"]
sparsity = { low = 0.3, high = 0.5, step = 0.1 }
quant = ["int8", "none", "float16"]
"""


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


def run_cli(*args: object, timeout: float = 300, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``autocompress ARGS`` in a subprocess (from ``cwd``), as a user runs it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "autocompress", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


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
    (root / "space.toml").write_text(SPACE)
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
