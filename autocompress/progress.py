"""Progress of long training runs: a live rich bar in a terminal, else one line per epoch."""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from autocompress._tf import keras


class EpochProgress(keras.callbacks.Callback):
    """Advance a rich task per batch; show the epoch, loss and accuracy."""

    def __init__(self, progress: Progress, description: str):
        super().__init__()
        self.progress, self.description, self.task = progress, description, None
        self.steps_per_epoch, self.epoch = 1, 0

    def on_train_begin(self, logs=None):
        self.steps_per_epoch = self.params.get("steps") or 1
        self.task = self.progress.add_task(self.description, total=self.params["epochs"] * self.steps_per_epoch,
                                           status="")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self.progress.update(self.task, completed=self.epoch * self.steps_per_epoch + batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self.progress.update(self.task, status=_epoch_status(epoch, self.params["epochs"], logs))


class EpochLines(keras.callbacks.Callback):
    """Hand ``write`` one line per finished epoch: ``description``, the epoch, loss, accuracy and the
    time left (from the epochs this fit ran: a training resumed from its checkpoint counts only those)."""

    def __init__(self, write: Callable[[str], None], description: str):
        super().__init__()
        self.write, self.description = write, description
        self.started, self.ran = time.time(), 0

    def on_train_begin(self, logs=None):
        self.started, self.ran = time.time(), 0

    def on_epoch_end(self, epoch, logs=None):
        self.ran += 1
        total = self.params["epochs"]
        left = (time.time() - self.started) / self.ran * (total - epoch - 1)
        self.write(f"{self.description}: {_epoch_status(epoch, total, logs)}, eta {left / 60:.1f} min")


@contextlib.contextmanager
def training_display(console: Console, description: str) -> Iterator[keras.callbacks.Callback]:
    """A callback that shows a training's progress on ``console``: a live bar in a terminal; where
    the output is a log or a pipe (which a live bar leaves blank until the end), a line per epoch."""
    if not console.is_terminal:
        yield EpochLines(lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True), description)
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"),
                  TimeRemainingColumn(), console=console, transient=False) as progress:
        yield EpochProgress(progress, description)


def _epoch_status(epoch: int, epochs: int, logs: dict | None) -> str:
    logs = logs or {}
    return f"epoch {epoch + 1}/{epochs} loss {logs.get('loss', float('nan')):.3f} " \
           f"acc {logs.get('accuracy', float('nan')):.3f}"
