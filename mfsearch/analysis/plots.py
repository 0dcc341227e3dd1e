"""Pareto plots of a ``ParetoReport``: a PNG (matplotlib) and an interactive, self-contained HTML
page (plotly, with plotly.js inlined so it opens offline). One panel per cost axis.

Both draw the same things: every compared trial, the front as a staircase, the paper's families in
their own colours and labelled, trials stopped early (lower fidelity) faded and apart, and - on
ImageNet-1K at 224 px only - the paper's published results as a reference series.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Sequence

from .fronts import ACCURACY, Front, ParetoReport, epochs_text, published_cost, published_reference
from .sweep_data import TrialRecord

# The paper's families keep one colour everywhere (PNG, HTML, dashboard); searched trials are blue.
FAMILY_COLORS = {
    "identityformer": "#8c564b", "randformer": "#9467bd", "poolformerv2": "#2ca02c",
    "convformer": "#ff7f0e", "caformer": "#d62728",
}
SEARCHED_COLOR = "#1f77b4"
OTHER_BASELINE_COLOR = "#7f7f7f"
LOWER_FIDELITY_COLOR = "#b0b0b0"
FRONT_COLOR = "#222222"
LOG_X_RATIO = 4.0   # a log cost axis once the largest cost is this many times the smallest


def family_color(family: str) -> str:
    if family == "searched":
        return SEARCHED_COLOR
    return FAMILY_COLORS.get(family, OTHER_BASELINE_COLOR)


def use_log_x(values: Sequence[float]) -> bool:
    """Costs spanning a factor of ``LOG_X_RATIO`` or more crowd the cheap end of a linear axis."""
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) >= LOG_X_RATIO


def _x(front: Front, trial: TrialRecord) -> float:
    return trial.metrics[front.axis.metric] / front.axis.scale


def _published(report: ParetoReport, front: Front) -> list[tuple[str, float, float]]:
    """(model, cost, top-1) of the paper's published results, ordered by family and size."""
    out = []
    for row in published_reference(report.sweep):
        cost = published_cost(row, front.axis)
        if cost is not None:
            out.append((row.model, cost / front.axis.scale, row.top1))
    return out


def _published_by_family(published: list[tuple[str, float, float]]) -> dict[str, list[tuple[str, float, float]]]:
    """One scaling curve per family (the paper plots them so; 23 labelled points would be noise)."""
    families: dict[str, list[tuple[str, float, float]]] = {}
    for point in published:
        families.setdefault(point[0].split("_")[0], []).append(point)
    return {f: sorted(points, key=lambda p: p[1]) for f, points in families.items()}


def _staircase(front: Front) -> tuple[list[float], list[float]]:
    """The front as the best accuracy reachable at each cost (a step up at each member)."""
    xs, ys = [], []
    for m in front.members:
        x, y = _x(front, m.trial), m.trial.metrics[ACCURACY]
        if xs:
            xs.append(x)
            ys.append(ys[-1])
        xs.append(x)
        ys.append(y)
    return xs, ys


def _title(front: Front) -> str:
    return f"{ACCURACY} vs {front.axis.label}: {len(front.compared)} trials at {epochs_text(front.fidelity)}"


def _hv_line(front: Front) -> str:
    return f"hypervolume: all {front.hypervolume:.3f}, baselines {front.hypervolume_baselines:.3f}"


# ---------------------------------------------------------------- PNG (matplotlib)

def write_png(report: ParetoReport, path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    n = len(report.fronts) + (report.confirmation is not None)
    fig, axes = plt.subplots(1, n, figsize=(6.4 * n, 5.4), squeeze=False, constrained_layout=True)
    if report.confirmation is not None:
        _draw_confirmed_panel(axes[0][-1], report.confirmation)
    for ax, front in zip(axes[0], report.fronts):
        _draw_panel(ax, report, front)
        if ax.get_xscale() == "log":  # plain 1-2-5 numbers, not 10^x nor a crowd of minor labels
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
    fig.suptitle(f"sweep {report.sweep.name}: accuracy against cost ({_data_line(report)})", fontsize=13)
    handles = _legend_handles(report)
    fig.legend(list(handles.values()), list(handles.keys()), loc="outside lower center",
               ncol=len(handles) if len(handles) <= 6 else math.ceil(len(handles) / 2), frameon=False, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _legend_handles(report: ParetoReport) -> dict[str, object]:
    """Proxy artists, so the legend shows each kind once in its plain style (not as first drawn)."""
    from matplotlib.lines import Line2D

    def marker(**kw) -> Line2D:
        return Line2D([], [], ls="", **kw)

    trials = [t for f in report.fronts for t in f.compared + f.lower_fidelity]
    handles: dict[str, object] = {
        "Pareto front": Line2D([], [], color=FRONT_COLOR, lw=1.4, ls="--"),
        "on the front (outlined)": marker(marker="o", ms=8, mfc="white", mec=FRONT_COLOR, mew=1.6)}
    if any(not t.is_baseline for t in trials):
        handles["searched"] = marker(marker="o", ms=6, color=SEARCHED_COLOR)
    for family in dict.fromkeys(t.family for t in trials if t.is_baseline):
        handles[family] = marker(marker="D", ms=7, color=family_color(family), mec="white")
    if any(f.lower_fidelity for f in report.fronts):
        top = max(f.fidelity for f in report.fronts)
        handles[f"hollow: stopped early (< {top} epochs, not compared)"] = marker(
            marker="o", ms=6, mfc="none", mec=LOWER_FIDELITY_COLOR)
    if published_reference(report.sweep):
        handles["the paper's ImageNet-1K results (+, per family)"] = Line2D(
            [], [], color="#777777", lw=1, marker="+", ms=8, alpha=0.7)
    return handles


def _draw_panel(ax, report: ParetoReport, front: Front) -> None:
    compared = list(front.compared)
    costs = [_x(front, t) for t in compared + list(front.lower_fidelity)]
    published = _published(report, front)
    if use_log_x(costs + [p[1] for p in published]):
        ax.set_xscale("log")
    for t in front.lower_fidelity:  # hollow; a family keeps its colour and name so it is not lost
        color = family_color(t.family) if t.is_baseline else LOWER_FIDELITY_COLOR
        ax.scatter([_x(front, t)], [t.metrics[ACCURACY]], marker="D" if t.is_baseline else "o",
                   s=50 if t.is_baseline else 28, facecolors="none", edgecolors=color, linewidths=1.2, zorder=1)
        if t.is_baseline:
            ax.annotate(f"{t.family} ({t.epochs} ep)", (_x(front, t), t.metrics[ACCURACY]), xytext=(6, 4),
                        textcoords="offset points", fontsize=8, color=color, alpha=0.8)
    xs, ys = _staircase(front)
    ax.plot(xs, ys, color=FRONT_COLOR, lw=1.4, ls="--", zorder=2)
    searched = [t for t in compared if not t.is_baseline]
    if searched:
        on = [front.is_member(t) for t in searched]
        ax.scatter([_x(front, t) for t in searched], [t.metrics[ACCURACY] for t in searched],
                   s=[60 if o else 30 for o in on], color=SEARCHED_COLOR,
                   edgecolors=[FRONT_COLOR if o else "white" for o in on], linewidths=[1.6 if o else 0.5 for o in on],
                   alpha=0.9, zorder=3)
    for t in compared:
        if not t.is_baseline:
            if front.is_member(t):  # the id ties the point to the table and to `export --run-id`
                ax.annotate(t.trial_id[:6], (_x(front, t), t.metrics[ACCURACY]), xytext=(5, -11),
                            textcoords="offset points", fontsize=7, color=SEARCHED_COLOR)
            continue
        color = family_color(t.family)
        ax.scatter([_x(front, t)], [t.metrics[ACCURACY]], marker="D", s=70, color=color,
                   edgecolors=FRONT_COLOR if front.is_member(t) else "white", linewidths=1.6, zorder=4)
        ax.annotate(t.family, (_x(front, t), t.metrics[ACCURACY]), xytext=(6, 5), textcoords="offset points",
                    fontsize=9, color=color, fontweight="bold")
    for family, points in _published_by_family(published).items():
        color = family_color(family)
        ax.plot([p[1] for p in points], [p[2] for p in points], color=color, lw=1, alpha=0.55, marker="+", ms=8,
                zorder=1)
        ax.annotate(f"{family} (paper)", (points[-1][1], points[-1][2]), xytext=(4, 2), textcoords="offset points",
                    fontsize=7, color=color, alpha=0.8)
    ax.set_xlabel(f"{front.axis.label} ({front.axis.unit}{', log scale' if ax.get_xscale() == 'log' else ''})")
    ax.set_ylabel(f"{ACCURACY} (%)")
    ax.set_title(f"{_title(front)}\n{_hv_line(front)}", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.margins(x=0.12, y=0.12)  # room for the labels beside the outermost points


def confirmed_title(confirmation) -> str:
    c = confirmation
    counts = c.counts()
    tau = "n/a" if math.isnan(c.kendall_tau) else f"{c.kendall_tau:+.2f}"
    return (f"confirmed: {len(c.seeds)} seeds x {epochs_text(c.epochs)}, mean and 95 % interval; "
            f"claims {counts['confirmed']} confirmed, {counts['refuted']} refuted, {counts['unconfirmed']} unconfirmed; "
            f"Kendall tau vs sweep {tau}")


def verdict_marks(confirmation, key: str) -> str:
    """``+caformer -convformer ?poolformerv2``: the verdicts of one searched architecture's claims."""
    sign = {"confirmed": "+", "refuted": "-", "unconfirmed": "?"}
    return " ".join(f"{sign[c.verdict]}{confirmation.arch(c.baseline).label}" for c in confirmation.claims_of(key))


def _draw_confirmed_panel(ax, confirmation) -> None:
    """Confirmed mean val/acc1 against MACs, with each architecture's 95 % interval as an error bar."""
    for a in confirmation.archs:
        i = a.val_interval
        if i is None:
            continue
        err = [[i.mean - i.low], [i.high - i.mean]] if i.n >= 2 else None
        color = family_color(a.family) if a.is_baseline else SEARCHED_COLOR
        ax.errorbar([a.macs / 1e6], [i.mean], yerr=err, fmt="D" if a.is_baseline else "o", color=color,
                    ms=8 if a.is_baseline else 7, capsize=4, lw=1.4, mec="white", zorder=3)
        label = a.family if a.is_baseline else f"{a.key[:6]} {verdict_marks(confirmation, a.key)}"
        ax.annotate(label, (a.macs / 1e6, i.mean), xytext=(7, 3), textcoords="offset points", fontsize=8,
                    color=color, fontweight="bold" if a.is_baseline else "normal")
    ax.set_xlabel("MACs (M)")
    ax.set_ylabel(f"{ACCURACY} (%), confirmation budget")
    ax.set_title(confirmed_title(confirmation).replace("; ", "\n", 1), fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.15, y=0.12)


def _data_line(report: ParetoReport) -> str:
    data = report.sweep.data
    parts = [str(data.get("dataset", "?"))]
    if report.sweep.img_size:
        parts.append(f"{report.sweep.img_size} px")
    if data.get("train_subset"):
        parts.append(f"{data['train_subset']} train images")
    return ", ".join(parts)


# ---------------------------------------------------------------- HTML (plotly)

def _count(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1e9:.2f} G" if value >= 1e9 else f"{value / 1e6:.3g} M"


def hover_text(trial: TrialRecord, front: Front | None = None) -> str:
    """Per-stage architecture, accuracy and costs of a trial, as plotly hover HTML."""
    m = trial.metrics
    lines = [f"<b>{html.escape(trial.label)}</b> (run {trial.run_id[:8]}, {trial.status}, {trial.epochs} ep)",
             f"{ACCURACY} {m[ACCURACY]:.2f} %",
             f"MACs {_count(m.get('cost/macs'))}, params {_count(m.get('cost/params'))}"
             + (f", latency {m['cost/latency_ms']:.2f} ms" if "cost/latency_ms" in m else "")]
    for i, s in enumerate(trial.stages):
        lines.append(f"stage {i}: {html.escape(s.describe())}"
                     + (f", {s.mlp_act}, mlp x{s.mlp_ratio:g}" if s.mlp_ratio else ""))
    if front is not None:
        member = next((x for x in front.members if x.trial.run_id == trial.run_id), None)
        if member is not None:
            beaten = ", ".join(b.label for b in member.dominates) or "none"
            lines.append(f"<i>on the front; dominates baselines at {trial.epochs} ep, one seed: {html.escape(beaten)}"
                         "</i>")
    return "<br>".join(lines)


def plotly_figure(report: ParetoReport, height: int = 520):
    """The fronts as one plotly figure, a panel per cost axis, legend entries shared by panels."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    titles = [f"{_title(f)}<br><sup>{_hv_line(f)}</sup>" for f in report.fronts]
    if report.confirmation is not None:
        titles.append(f"confirmed ({len(report.confirmation.seeds)} seeds x {report.confirmation.epochs} ep)"
                      f"<br><sup>mean and 95 % interval</sup>")
    n = len(titles)
    fig = make_subplots(rows=1, cols=n, subplot_titles=titles, horizontal_spacing=0.07)
    shown: set[str] = set()

    def add(col: int, name: str, rank: int, **kw) -> None:
        fig.add_trace(go.Scatter(name=name, legendgroup=name, showlegend=name not in shown, legendrank=rank, **kw),
                      row=1, col=col)
        shown.add(name)

    for col, front in enumerate(report.fronts, start=1):
        low = [t for t in front.lower_fidelity if not t.is_baseline]
        if low:
            add(col, f"stopped early (< {front.fidelity} ep, not compared)", 900, mode="markers",
                x=[_x(front, t) for t in low], y=[t.metrics[ACCURACY] for t in low],
                marker=dict(symbol="circle-open", size=8, color=LOWER_FIDELITY_COLOR),
                hovertext=[hover_text(t) for t in low], hoverinfo="text")
        for t in (t for t in front.lower_fidelity if t.is_baseline):
            add(col, f"{t.family} (stopped early)", 800, mode="markers+text", x=[_x(front, t)], y=[t.metrics[ACCURACY]],
                text=[f"{t.family} ({t.epochs} ep)"], textposition=_text_side(front, t),
                textfont=dict(color=family_color(t.family), size=10),
                marker=dict(symbol="diamond-open", size=11, color=family_color(t.family)),
                hovertext=[hover_text(t)], hoverinfo="text", opacity=0.8)
        xs, ys = _staircase(front)
        add(col, "Pareto front", 100, mode="lines", x=xs, y=ys, line=dict(color=FRONT_COLOR, dash="dash", width=1.5),
            hoverinfo="skip")
        searched = [t for t in front.compared if not t.is_baseline]
        if searched:
            on = [front.is_member(t) for t in searched]
            add(col, "searched", 300, mode="markers+text", x=[_x(front, t) for t in searched],
                y=[t.metrics[ACCURACY] for t in searched],
                text=[t.trial_id[:6] if o else "" for t, o in zip(searched, on)], textposition="bottom right",
                textfont=dict(size=9, color=SEARCHED_COLOR),
                marker=dict(color=SEARCHED_COLOR, size=[12 if o else 8 for o in on],
                            line=dict(color=[FRONT_COLOR if o else "white" for o in on], width=[2 if o else 1 for o in on])),
                hovertext=[hover_text(t, front) for t in searched], hoverinfo="text")
        for t in (t for t in front.compared if t.is_baseline):
            add(col, t.family, 400, mode="markers+text", x=[_x(front, t)], y=[t.metrics[ACCURACY]], text=[t.family],
                textposition=_text_side(front, t), textfont=dict(color=family_color(t.family), size=11),
                marker=dict(symbol="diamond", size=13, color=family_color(t.family),
                            line=dict(color=FRONT_COLOR if front.is_member(t) else "white", width=1.5)),
                hovertext=[hover_text(t, front)], hoverinfo="text")
        add(col, "on the front (outlined)", 200, mode="markers", x=[None], y=[None], hoverinfo="skip",
            marker=dict(color="white", size=12, line=dict(color=FRONT_COLOR, width=2)))
        published = _published(report, front)
        for family, points in _published_by_family(published).items():
            add(col, f"{family} (paper, ImageNet-1K)", 950, mode="lines+markers", x=[p[1] for p in points],
                y=[p[2] for p in points], opacity=0.6, line=dict(color=family_color(family), width=1),
                marker=dict(symbol="cross-thin-open", size=9, color=family_color(family)),
                hovertext=[f"{p[0]} (published): top-1 {p[2]} %" for p in points], hoverinfo="text")
        xs = [_x(front, t) for t in front.compared + front.lower_fidelity] + [p[1] for p in published]
        log = use_log_x(xs)
        ticks = log_ticks(min(xs), max(xs)) if log else None
        fig.update_xaxes(title_text=f"{front.axis.label} ({front.axis.unit}{', log' if log else ''})",
                         type="log" if log else "linear", row=1, col=col, tickvals=ticks,
                         ticktext=[f"{v:g}" for v in ticks] if ticks else None)
        fig.update_yaxes(title_text=f"{ACCURACY} (%)", row=1, col=col)
    if report.confirmation is not None:
        add_confirmed_traces(fig, report.confirmation, n, add)
    fig.update_layout(height=height, template="plotly_white", hoverlabel=dict(align="left"),
                      legend=dict(orientation="h", yanchor="top", y=-0.18, x=0.5, xanchor="center"),
                      margin=dict(t=90, l=60, r=30, b=40),
                      title=dict(text=f"sweep {html.escape(report.sweep.name)}: accuracy against cost "
                                      f"({html.escape(_data_line(report))})", x=0.5))
    return fig


def add_confirmed_traces(fig, confirmation, col: int, add) -> None:
    """Confirmed means with 95 % intervals (error bars) against MACs, in column ``col``."""
    for a in confirmation.archs:
        i = a.val_interval
        if i is None:
            continue
        color = family_color(a.family) if a.is_baseline else SEARCHED_COLOR
        err = dict(type="data", symmetric=False, array=[i.high - i.mean], arrayminus=[i.mean - i.low],
                   color=color, thickness=1.5, width=5) if i.n >= 2 else None
        marks = "" if a.is_baseline else verdict_marks(confirmation, a.key)
        text = a.family if a.is_baseline else f"{a.key[:6]} {marks}"
        hover = (f"<b>{html.escape(a.label)}</b> (confirmed, seeds {', '.join(map(str, sorted(a.val)))})<br>"
                 f"{ACCURACY} {html.escape(i.text())} % (95 % interval)<br>MACs {_count(a.macs)}, params "
                 f"{_count(a.params)}<br>sweep: {a.sweep_acc if a.sweep_acc is not None else '-'} % at "
                 f"{a.sweep_epochs} ep<br>{html.escape(a.stages)}"
                 + (f"<br>claims: {html.escape(marks)} (+ confirmed, - refuted, ? unconfirmed)" if marks else ""))
        add(col, f"{a.label} (confirmed)" if a.is_baseline else "searched (confirmed)", 500, mode="markers+text",
            x=[a.macs / 1e6], y=[i.mean], error_y=err, text=[text], textposition="middle right",
            textfont=dict(size=10, color=color),
            marker=dict(symbol="diamond" if a.is_baseline else "circle", size=11, color=color,
                        line=dict(color="white", width=1)),
            hovertext=[hover], hoverinfo="text")
    fig.update_xaxes(title_text="MACs (M)", row=1, col=col)
    fig.update_yaxes(title_text=f"{ACCURACY} (%), confirmation budget", row=1, col=col)


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks covering [lo, hi]: plotly's own log ticks abbreviate 20, 30 to "2", "3"."""
    ticks = []
    for exp in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        ticks += [m * 10.0 ** exp for m in (1, 2, 5)]
    inside = [t for t in ticks if lo / 1.3 <= t <= hi * 1.3]
    return [float(f"{t:.6g}") for t in inside]


def _text_side(front: Front, trial: TrialRecord) -> str:
    """Labels of points near the right edge go to their left, so the axis does not clip them."""
    xs = [_x(front, t) for t in front.compared + front.lower_fidelity]
    lo, hi, x = min(xs), max(xs), _x(front, trial)
    if use_log_x(xs):
        lo, hi, x = math.log(lo), math.log(hi), math.log(x)
    return "top left" if hi > lo and (x - lo) / (hi - lo) > 0.75 else "top right"


def write_html(report: ParetoReport, path: Path) -> Path:
    """A standalone page: plotly.js inlined, so it opens from disk with no network."""
    fig = plotly_figure(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True,
                   config={"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}})
    return path
