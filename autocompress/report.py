"""A study's report: one self-contained HTML page (plotly's JavaScript inlined once).

Sections: the Pareto front, the hypervolume over trials, parameter importances per objective,
the compression techniques compared, and the front as a table.
"""

from __future__ import annotations

import html
import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState
from plotly.offline import get_plotlyjs

from autocompress.cache import atomic_file
from autocompress.compress.config import CompressionConfig
from autocompress.errors import UserError
from autocompress.search.front import COLUMNS, front_figure, front_rows
from autocompress.search.record import StudyRecord, TrialRecord

GROUPS = ("plain", "KD only", "pruning only", "quantization only", "combined")
GROUP_COLORS = dict(zip(GROUPS, ("#7f7f7f", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728")))
OBJECTIVE_NAMES = {"accuracy": "validation accuracy", "size": "size", "latency": "latency",
                   "ram": "TFLite Micro arena bytes"}
REFERENCE_SIZE_FACTOR = 1.1


def _completed(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _search(study: optuna.Study) -> dict:
    """What the search recorded about itself: dataset, space, objectives, size_metric."""
    return StudyRecord.of(study).search or {}


def _feasible(trial: FrozenTrial) -> bool:
    return all(value <= 0 for value in trial.constraints.values())


def _figure_html(figure: go.Figure) -> str:
    return figure.to_html(include_plotlyjs=False, full_html=False)


# ---------------------------------------------------------------- hypervolume


# Not optuna.visualization.plot_hypervolume_history: it takes the hypervolume over all of a study's
# objectives (its reference point has one entry per objective), while this page compares studies on
# (accuracy, size) alone whatever else they minimise (latency, ram), normalised by the reference box.
def hypervolume_2d(points: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """The area dominated by ``points`` (both coordinates minimised) inside the box below ``reference``."""
    inside = sorted(p for p in points if p[0] < reference[0] and p[1] < reference[1])
    area, best_y = 0.0, reference[1]
    for i, (x, y) in enumerate(inside):
        best_y = min(best_y, y)
        next_x = inside[i + 1][0] if i + 1 < len(inside) else reference[0]
        area += (next_x - x) * (reference[1] - best_y)
    return area


def hypervolume_history(study: optuna.Study) -> list[tuple[int, float]]:
    """(trial number, normalised hypervolume of the feasible trials so far) after each completed trial.

    Points are (1 - validation accuracy, size), both minimised; the reference point is accuracy 0
    and 1.1 x the largest size of any completed trial. The area is divided by the reference
    box's, so 1 would be a perfect model of zero bytes.
    """
    trials = sorted(_completed(study), key=lambda t: t.number)
    if not trials:
        return []
    reference = (1.0, REFERENCE_SIZE_FACTOR * max(t.values[1] for t in trials))
    history, points = [], []
    for trial in trials:
        if _feasible(trial):
            points.append((1.0 - trial.values[0], trial.values[1]))
        history.append((trial.number, hypervolume_2d(points, reference) / (reference[0] * reference[1])))
    return history


def hypervolume_figure(study: optuna.Study) -> go.Figure:
    history = hypervolume_history(study)
    figure = go.Figure(go.Scatter(x=[n for n, _ in history], y=[v for _, v in history], mode="lines+markers",
                                  line=dict(shape="hv", color="#1f77b4"), name="hypervolume"))
    figure.update_layout(xaxis=dict(title="trial", dtick=max(1, math.ceil(len(history) / 12))),
                         yaxis=dict(title="normalised hypervolume", rangemode="tozero"),
                         template="plotly_white", height=360, title="Hypervolume over trials")
    return figure


# ---------------------------------------------------------------- importances


@dataclass(frozen=True)
class Importance:
    """One objective's parameter importances (empty when they could not be computed) and notes."""

    objective: str
    values: dict[str, float]
    notes: tuple[str, ...] = ()


def _importance(study: optuna.Study, index: int, name: str, count: int) -> Importance:
    if count < 2:
        return Importance(name, {}, (f"needs at least 2 completed trials (the study has {count})",))
    sign = -1.0 if study.directions[index] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            values = optuna.importance.get_param_importances(study, target=lambda t: sign * t.values[index])
        except Exception as error:  # an optional section: any evaluator failure becomes a note
            return Importance(name, {}, (f"could not be computed ({str(error).splitlines()[0][:160]})",))
    notes = tuple(dict.fromkeys(str(w.message).splitlines()[0] for w in caught
                                if "modify target" not in str(w.message)))
    return Importance(name, values, notes if values else ("no parameter varied across the completed trials",))


def importances(study: optuna.Study) -> list[Importance]:
    """Optuna's parameter importances (its default evaluator) for each objective, with notes on
    why they are missing or uncertain (too few trials, a parameter seen too rarely).

    The values come from ``optuna.importance.get_param_importances(target=...)``, which
    ``plot_param_importances(target=...)`` calls too; calling it here keeps its warnings and
    errors, which become the section's notes, and evaluates each objective once."""
    objectives = _search(study).get("objectives") or ["accuracy", "size"]
    count = len(_completed(study))
    return [_importance(study, index, name, count) for index, name in enumerate(objectives)]


def _importance_section(study: optuna.Study) -> str:
    parts = []
    for result in importances(study):
        title = f"Importance for {OBJECTIVE_NAMES.get(result.objective, result.objective)}"
        notes = "".join(f'<p class="note"><b>{html.escape(title)}</b>: {html.escape(note)}</p>'
                        for note in result.notes)
        values = result.values
        if not values:
            parts.append(notes)
            continue
        params = list(values)[::-1]
        figure = go.Figure(go.Bar(x=[values[p] for p in params], y=params, orientation="h", marker_color="#1f77b4"))
        figure.update_layout(title=title, xaxis=dict(title="importance (sums to 1)"), template="plotly_white",
                             height=140 + 30 * len(params), margin=dict(l=140))
        parts.append(_figure_html(figure) + notes)
    return "\n".join(parts)


# ---------------------------------------------------------------- techniques


def technique(config: dict) -> str:
    """plain, KD only, pruning only, quantization only or combined (two or more techniques), by
    the rules of :class:`CompressionConfig` (``distills``, ``prunes``, ``quantizes``) applied to a
    trial's recorded configuration."""
    values = CompressionConfig.from_dict(config)
    used = [name for name, on in (("KD only", values.distills), ("pruning only", values.prunes),
                                  ("quantization only", values.quantizes)) if on]
    return "plain" if not used else used[0] if len(used) == 1 else "combined"


def technique_groups(study: optuna.Study) -> dict[str, list[FrozenTrial]]:
    groups: dict[str, list[FrozenTrial]] = defaultdict(list)
    for trial in _completed(study):
        groups[technique(TrialRecord.of(trial).config or {})].append(trial)
    return {name: groups[name] for name in GROUPS if groups[name]}


def _techniques_section(study: optuna.Study) -> str:
    groups = technique_groups(study)
    rows = []
    for name, trials in groups.items():
        best = max(trials, key=lambda t: (t.values[0], -t.values[1]))
        least = min(trials, key=lambda t: (t.values[1], -t.values[0]))
        rows.append([name, len(trials), f"{100 * best.values[0]:.2f}% (trial {best.number})",
                     f"{least.values[1] / 1024:.1f} KB (trial {least.number})"])
    table = _table(["technique", "trials", "best val accuracy", "smallest size"], rows)
    figure = go.Figure([
        go.Scatter(x=[t.values[1] / 1024 for t in trials], y=[100 * t.values[0] for t in trials], mode="markers",
                   name=name, marker=dict(color=GROUP_COLORS[name], size=10),
                   text=[f"trial {t.number}<br>{TrialRecord.of(t).label or ''}" for t in trials],
                   hovertemplate="%{text}<br>%{x:.1f} KB, %{y:.2f}%<extra></extra>")
        for name, trials in groups.items()])
    figure.update_layout(title="Completed trials by technique", xaxis=dict(title="size (KB, log scale)", type="log"),
                         yaxis=dict(title="validation accuracy (%)"), template="plotly_white")
    return table + _figure_html(figure)


# ---------------------------------------------------------------- page


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object) -> object:
    return f"{value:.4g}" if isinstance(value, float) else "" if value is None else value


def _front_table(study: optuna.Study) -> str:
    return _table(list(COLUMNS), [[_cell(row[key]) for key in COLUMNS] for row in front_rows(study)])


def _summary(study: optuna.Study) -> str:
    trials = study.get_trials(deepcopy=False)
    counts = {state.name.lower(): sum(t.state == state for t in trials) for state in TrialState}
    search = _search(study)
    items = [("dataset", search.get("dataset")), ("objectives", ", ".join(search.get("objectives") or [])),
             ("size metric", search.get("size_metric")),
             ("trials", ", ".join(f"{n} {state}" for state, n in counts.items() if n))]
    return "<ul>" + "".join(f"<li><b>{k}</b>: {html.escape(str(v))}</li>" for k, v in items) + "</ul>"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f3f4f6; }
.note { color: #555; }
"""


def build_report(study: optuna.Study) -> str:
    """The report page of ``study`` as a string (UserError if no trial completed)."""
    sections = [
        ("Pareto front", _figure_html(front_figure(study))),
        ("Hypervolume over trials",
         '<p class="note">Dominated area of (1 - validation accuracy, size), both minimised, up to the reference '
         f"point (accuracy 0, {REFERENCE_SIZE_FACTOR} x the largest size seen), divided by the reference box.</p>"
         + _figure_html(hypervolume_figure(study))),
        ("Parameter importances", _importance_section(study)),
        ("Techniques compared",
         '<p class="note">KD = distillation (alpha &lt; 1), pruning = sparsity &gt; 0, quantization = quant other '
         "than none; combined = two or more of them.</p>" + _techniques_section(study)),
        ("Pareto-optimal trials", _front_table(study)),
    ]
    title = f"autocompress report: {html.escape(study.study_name)}"
    body = "\n".join(f"<section><h2>{name}</h2>\n{content}</section>" for name, content in sections)
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head>\n"
            f"<body><h1>{title}</h1>{_summary(study)}\n{body}</body></html>\n")


def write_report(study: optuna.Study, out: Path) -> Path:
    """Write the report of ``study`` to ``out`` atomically and return ``out``."""
    page = build_report(study)
    out = Path(out)
    try:
        with atomic_file(out) as tmp:
            tmp.write_text(page, encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot write {out} ({error.strerror or error}); choose a writable --out") from None
    return out


def report(study_name: str, out: Path, study_dir: Path | None = None, storage: str | None = None) -> Path:
    """Load the study and write its report to ``out``."""
    from autocompress.search.storage import load_study

    study, _ = load_study(study_name, study_dir, storage)
    return write_report(study, out)
