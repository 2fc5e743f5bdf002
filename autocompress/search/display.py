"""The live view of a running search: trial counts, elapsed time, ETA and the current front."""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from autocompress.search.settings import finished_or_running


def front_table(rows: list[dict], title: str = "Pareto front") -> Table:
    """The front's rows; with an NPU column when the search estimated its files (--npu)."""
    npu = any(row.get("npu_ms") is not None for row in rows)
    table = Table("trial", "configuration", "val acc", "test acc", "KB", "gzip KB", "%/KB", "arena KB", "MMACs",
                  *(["NPU ms"] if npu else []), title=title)
    for row in rows:
        arena, macs, npu_ms = row.get("arena_bytes"), row.get("macs"), row.get("npu_ms")
        table.add_row(str(row["trial"]), row["label"] or "", f"{100 * row['val_accuracy']:.2f}",
                      f"{100 * row['test_accuracy']:.2f}", f"{row['tflite_bytes'] / 1024:.1f}",
                      f"{row['gzip_bytes'] / 1024:.1f}", f"{row['efficiency']:.2f}",
                      "n/a" if arena is None else f"{arena / 1024:.1f}", "n/a" if macs is None else f"{macs / 1e6:.2f}",
                      *([("n/a" if npu_ms is None else f"{npu_ms:.3f}")] if npu else []))
    return table


class SearchDisplay:
    """An Optuna callback that redraws a rich live panel after every trial, with the epoch each
    worker trains (:meth:`activity`); where the output is not a terminal (a log file, a pipe), which a
    live panel would leave blank until the end, one line per trial instead (the counts, the ETA and
    the front's extremes) and one per epoch trained."""

    def __init__(self, console: Console, target: int):
        self.console, self.target = console, target
        self.live = Live(Text("opening the study..."), console=console, auto_refresh=False) \
            if console.is_terminal else None
        self.started = time.time()
        self.done_at_start = 0
        self.panel: list = [Text("opening the study...")]  # the trial counts, then the front's table
        self.training: dict[int, str] = {}  # each worker's latest epoch line

    def __enter__(self) -> "SearchDisplay":
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def on_ready(self, study: optuna.Study) -> None:
        self.done_at_start = sum(t.state.is_finished() for t in finished_or_running(study))
        self.started = time.time()
        self.refresh(study)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.training.clear()  # a finished trial's last epoch line is stale
        self.refresh(study)

    def activity(self, slot: int, line: str) -> None:
        """Worker ``slot`` finished an epoch (``line``: what it trains, the epoch, the time left)."""
        if self.live is None:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
            return
        self.training[slot] = line
        self._draw()

    def _draw(self) -> None:
        lines = [Text(self.training[slot]) for slot in sorted(self.training)]
        self.live.update(Group(self.panel[0], *lines, *self.panel[1:]), refresh=True)

    def refresh(self, study: optuna.Study) -> None:
        from autocompress.search.front import front_rows

        trials = study.get_trials(deepcopy=False)
        counted = finished_or_running(study)
        done = sum(t.state.is_finished() for t in counted)
        running = sum(t.state == TrialState.RUNNING for t in counted)
        failed = sum(t.state == TrialState.FAIL for t in trials)
        pruned = sum(t.state == TrialState.PRUNED for t in counted)
        elapsed = time.time() - self.started
        finished_here = done - self.done_at_start
        eta = elapsed / finished_here * max(0, self.target - done) if finished_here else None
        status = Text(f"trials {done}/{self.target} done ({pruned} pruned), {running} running, {failed} failed · "
                      f"elapsed {elapsed / 60:.1f} min · eta " + (f"{eta / 60:.1f} min" if eta is not None else "?"))
        rows = front_rows(study) if any(t.state == TrialState.COMPLETE for t in trials) else []
        if self.live is not None:
            self.panel = [status, *([front_table(rows)] if rows else [])]
            self._draw()
            return
        if rows:
            smallest, best = rows[0], max(rows, key=lambda row: row["val_accuracy"])
            status.append(f" · front: {len(rows)} point(s), {_point(smallest)} to {_point(best)}")
        self.console.print(status, soft_wrap=True, highlight=False)


def _point(row: dict) -> str:
    return f"{100 * row['val_accuracy']:.2f}% val at {row['tflite_bytes']:,} B (trial {row['trial']})"
