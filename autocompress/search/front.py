"""The Pareto front of a study: rows, files (csv, json) and a self-contained plotly page."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState

from autocompress.cache import atomic_file
from autocompress.errors import UserError
from autocompress.search.record import StudyRecord, TrialRecord

COLUMNS = ("trial", "label", "val_accuracy", "test_accuracy", "tflite_bytes", "gzip_bytes", "efficiency",
           "latency_ms", "params", "nonzero_params", "arena_bytes", "macs", "tflm_agreement", "npu_ms",
           "npu_sram_bytes")


def trial_row(trial: optuna.trial.FrozenTrial) -> dict:
    record = TrialRecord.of(trial)
    return {"trial": trial.number, **{key: getattr(record, key) for key in COLUMNS[1:]}, "config": record.config or {}}


def front_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Optuna's Pareto-optimal (and feasible) trials, smallest first; without repeats, which are copies
    of a front trial's result."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise UserError(f"study {study.study_name!r} has no completed trial yet; run autocompress search first")
    size_index = 1
    distinct = [t for t in study.best_trials if TrialRecord.of(t).repeats is None]
    return sorted(distinct, key=lambda t: t.values[size_index])


def front_rows(study: optuna.Study) -> list[dict]:
    return [trial_row(trial) for trial in front_trials(study)]


def front_figure(study: optuna.Study, title: str | None = None) -> go.Figure:
    """All completed trials, the front highlighted; size on a log axis; hover shows each configuration."""
    front = front_trials(study)
    numbers = {t.number for t in front}
    others = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.number not in numbers]
    size_name = "gzip bytes" if StudyRecord.of(study).searched("size_metric") == "gzip" else ".tflite bytes"

    def trace(trials, name, style):
        return go.Scatter(
            x=[t.values[1] / 1024 for t in trials], y=[100 * t.values[0] for t in trials], name=name, **style,
            text=[f"trial {t.number}<br>{r.label or ''}<br>val {100 * t.values[0]:.2f}% · "
                  f"test {100 * (r.test_accuracy or 0):.2f}%<br>{t.values[1] / 1024:.1f} KB"
                  for t, r in ((t, TrialRecord.of(t)) for t in trials)],
            hovertemplate="%{text}<extra></extra>")

    figure = go.Figure([
        trace(others, "other trials", dict(mode="markers", marker=dict(color="#9aa5b1", size=8, opacity=0.7))),
        trace(front, "Pareto front", dict(mode="lines+markers", line=dict(shape="hv", color="#d62728"),
                                          marker=dict(color="#d62728", size=11, symbol="diamond"))),
    ])
    figure.update_layout(
        title=title or f"Pareto front of {study.study_name} ({len(front)} of {len(front) + len(others)} trials)",
        xaxis=dict(title=f"size ({size_name.replace('bytes', 'KB')}, log scale)", type="log"),
        yaxis=dict(title="validation accuracy (%)"), template="plotly_white", hovermode="closest",
        legend=dict(orientation="h", y=-0.15))
    return figure


def write_front(study: optuna.Study, folder: Path, page: bool = True) -> dict[str, Path]:
    """Write ``front.csv``, ``front.json`` and (with ``page``; it holds plotly, about 5 MB) ``front.html``
    to ``folder``; return their paths."""
    rows = front_rows(study)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {kind: folder / f"front.{kind}" for kind in ("csv", "json", *(["html"] if page else []))}
    with atomic_file(paths["csv"]) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, "config"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "config": json.dumps(row["config"], sort_keys=True)})
    with atomic_file(paths["json"]) as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    if page:
        with atomic_file(paths["html"]) as tmp:
            front_figure(study).write_html(tmp, include_plotlyjs=True, full_html=True)
    return paths
