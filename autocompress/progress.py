"""Progress display for long training runs (a Keras callback driving a rich progress bar)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from autocompress._tf import keras


def progress_bar(console: Console | None = None) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"),
                    TimeRemainingColumn(), console=console, transient=False)


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
        logs = logs or {}
        status = f"epoch {epoch + 1}/{self.params['epochs']} loss {logs.get('loss', float('nan')):.3f} " \
                 f"acc {logs.get('accuracy', float('nan')):.3f}"
        self.progress.update(self.task, status=status)
