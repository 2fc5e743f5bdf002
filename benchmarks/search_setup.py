"""What the search benchmarks share: their common options, the --quick set-up on tiny
generated data, and a teacher cached before any timed search starts."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

QUICK_SPACE = Path(__file__).resolve().parent / "quick_space.toml"
QUICK_EPOCHS = ["--epochs", "3"]


@dataclass(frozen=True)
class Setup:
    """Where a benchmark's searches run: the dataset, the shared cache, the extra search options."""

    dataset: str
    data_dir: str
    cache: str
    work: Path
    search_args: tuple[str, ...]
    trials: int | None  # --trials, or the quick mode's count

    def search(self, *args: str) -> list[str]:
        """The ``autocompress search`` command line with this set-up's options and ``args``."""
        return [sys.executable, "-m", "autocompress", "search", "--dataset", self.dataset, "--data-dir",
                self.data_dir, "--cache-dir", self.cache, "--quiet", *self.search_args, *args]


def parser(description: str, dataset: str, quick_help: str, trials: int | None = None) -> argparse.ArgumentParser:
    """The shared options, and ``--trials`` (default ``trials``) when a benchmark counts trials."""
    options = argparse.ArgumentParser(description=description)
    if trials is not None:
        options.add_argument("--trials", type=int, default=trials)
    options.add_argument("--dataset", default=dataset)
    options.add_argument("--data-dir", default="../shared/datasets")
    options.add_argument("--cache-dir", default=None,
                         help="the teacher's cache (default: a fresh one in the work folder, so the teacher trains)")
    options.add_argument("--epochs", type=int, default=None, help="cap every trial's epochs (default: the space's)")
    options.add_argument("--config", default=None, help="search-space TOML (default: the dataset's built-in space)")
    options.add_argument("--quick", action="store_true", help=quick_help)
    return options


def prepare(args: argparse.Namespace, name: str, quick_trials: int | None = None) -> Setup:
    """A work folder, the quick data if asked, and the teacher trained (or loaded) once."""
    work = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    dataset, search_args, teacher_args = args.dataset, (), []
    if args.quick:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from helpers import write_bar_npz

        dataset = str(write_bar_npz(work / "bars.npz"))
        search_args, teacher_args = (*QUICK_EPOCHS, "--teacher-epochs", "3", "--config", str(QUICK_SPACE)), QUICK_EPOCHS
    else:
        search_args = (*(("--epochs", str(args.epochs)) if args.epochs else ()),
                       *(("--config", args.config) if args.config else ()))
    cache = args.cache_dir or str(work / "cache")
    subprocess.run([sys.executable, "-m", "autocompress", "teacher", "--dataset", dataset, "--data-dir",
                    args.data_dir, "--cache-dir", cache, *teacher_args], check=True, capture_output=True)
    trials = quick_trials if args.quick else getattr(args, "trials", None)
    return Setup(dataset, args.data_dir, cache, work, search_args, trials)
