"""`mfsearch dashboard`: one self-contained HTML page about a sweep - no server, no network.

Five views, each answering one question (dashboards/README.md explains how to read them):
the Pareto scatter (where do searched architectures stand against the paper's families?), parallel
coordinates over the per-stage choices coloured by accuracy (which choices go with accuracy?), the
mixers of each stage among front members (what do the winners have in common?), accuracy against
epoch (did the budget separate them, and whom did the scheduler stop?), and the baselines table.
plotly.js is inlined once; the figures are plain JSON drawn by it.
"""
from __future__ import annotations

import html
from pathlib import Path

from .. import metrics as M
from .fronts import ACCURACY, Front, ParetoReport, epochs_text
from .plots import FAMILY_COLORS, family_color, hover_text, plotly_figure

# A mixer gets the colour of the paper family named after it (pooling = PoolFormerV2's green, ...).
MIXER_COLORS = {"identity": FAMILY_COLORS["identityformer"], "random": FAMILY_COLORS["randformer"],
                "pooling": FAMILY_COLORS["poolformerv2"], "sepconv": FAMILY_COLORS["convformer"],
                "attention": FAMILY_COLORS["caformer"]}
PLOT_CONFIG = {"displaylogo": False, "responsive": True}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1400px;
       padding: 12px 24px 40px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin: 1.6em 0 0.2em; }
p.lead, p.note { color: #555; margin: 0.2em 0 0.6em; } .chart { width: 100%; min-height: 420px; }
table { border-collapse: collapse; font-size: 0.9em; margin-top: 0.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; } td.num { text-align: right; }
th { background: #f4f4f4; } code { background: #f4f4f4; padding: 0 3px; }
"""


def build_dashboard(report: ParetoReport) -> str:
    """The page's HTML (a few MB: plotly.js is inlined so it opens offline)."""
    from plotly.offline import get_plotlyjs

    sweep = report.sweep
    main = report.fronts[0]
    sections = [
        ("pareto", "Accuracy against cost",
         "Every trial at the sweep's highest fidelity; the dashed staircase is the Pareto front, outlined points "
         "are on it, diamonds are the paper's families. Hover a point for its per-stage architecture. Grey "
         "rings were stopped early by the scheduler: plotted, never compared.", plotly_figure(report)),
        ("parallel", "Per-stage choices, coloured by accuracy",
         f"One line per trial at {epochs_text(main.fidelity)}; drag along an axis to filter (e.g. the top of "
         f"{ACCURACY}) and see which choices remain.", parallel_figure(main)),
        ("mixers", "Token mixers of each stage among the front members",
         f"How many of the {len(main.members)} members of the accuracy-vs-MACs front use each mixer in each stage "
         "(a stage with several mixers counts once for each).", mixer_figure(main)),
        ("curves", "Validation accuracy per epoch",
         "Thick lines: front members; diamonds: the paper's families; short lines: trials the scheduler "
         "stopped.", curves_figure(report)),
    ]
    body = [f"<h1>Sweep <code>{html.escape(sweep.name)}</code></h1>", f"<p class='lead'>{_summary(report)}</p>"]
    for key, title, note, fig in sections:
        fig_html = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{key}", config=PLOT_CONFIG,
                               default_width="100%")
        body.append(f"<section id='{key}'><h2>{html.escape(title)}</h2><p class='note'>{html.escape(note)}</p>"
                    f"<div class='chart-wrap' data-chart='{key}'>{fig_html}</div></section>")
    body.append(confirmation_section(report))
    body.append("<section id='baselines'><h2>The paper's families (baselines)</h2>"
                f"<p class='note'>At {epochs_text(main.fidelity)} on {html.escape(str(sweep.data.get('dataset', '?')))}; "
                "'dominated by' lists the trials that are at least as accurate and as cheap in MACs, and better in "
                f"one, at that fidelity and one seed, with the verdict of <code>mfsearch confirm</code>.</p>"
                f"{baselines_table(main, report)}</section>")
    body.append(f"<p class='note'>MLflow: <code>mlflow ui --backend-store-uri {html.escape(sweep.tracking_uri)}</code>, "
                f"experiment <code>{html.escape(sweep.name)}</code>, sweep run <code>{sweep.parent_run_id}</code>."
                "</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>mfsearch sweep {html.escape(sweep.name)}</title><style>{CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>{''.join(body)}</body></html>")


def write_dashboard(report: ParetoReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(build_dashboard(report), encoding="utf-8")
    return path


def _summary(report: ParetoReport) -> str:
    s, main = report.sweep, report.fronts[0]
    data = s.data
    searched = sum(not t.is_baseline for t in s.finished)
    hv = "; ".join(f"{f.axis.key}: all {f.hypervolume:.3f}, baselines {f.hypervolume_baselines:.3f}" for f in report.fronts)
    return html.escape(
        f"{len(s.finished)} finished trials ({searched} searched, {len(s.finished) - searched} baselines) on "
        f"{data.get('dataset', '?')} at {s.img_size} px ({data.get('train_subset') or 'all'} train images); "
        f"{len(main.compared)} reached the highest fidelity, {epochs_text(main.fidelity)}. Hypervolume ({hv}).")


def parallel_figure(front: Front):
    """Parallel coordinates over the per-stage choices that vary, then MACs and accuracy."""
    import plotly.graph_objects as go

    trials = list(front.compared)
    dims = []
    n_stages = max((len(t.stages) for t in trials), default=0)
    for i in range(n_stages):
        for field in ("mixer", "depth", "dim", "mlp_ratio", "mlp_act", "norm"):
            values = [getattr(t.stages[i], field) if i < len(t.stages) else None for t in trials]
            if len(set(values)) > 1 or field == "mixer":  # constant columns say nothing
                dims.append(_dimension(f"s{i} {field}", values))
    dims.append(dict(label="MACs (M)", values=[round(t.metrics[M.COST_MACS] / 1e6, 2) for t in trials]))
    acc = [round(t.metrics[ACCURACY], 2) for t in trials]
    dims.append(dict(label=f"{ACCURACY} (%)", values=acc))
    fig = go.Figure(go.Parcoords(line=dict(color=acc, colorscale="Viridis", showscale=True,
                                           colorbar=dict(title=dict(text=f"{ACCURACY} %"))),
                                 dimensions=dims, labelangle=-20, labelside="top"))
    fig.update_layout(height=440, margin=dict(t=90, l=60, r=60, b=30), template="plotly_white")
    return fig


def _dimension(label: str, values: list) -> dict:
    if all(isinstance(v, (int, float)) and v is not None for v in values):
        return dict(label=label, values=values, tickvals=sorted(set(values)))
    names = sorted({str(v) for v in values}, key=_mixer_order)
    index = {name: k for k, name in enumerate(names)}
    return dict(label=label, values=[index[str(v)] for v in values], tickvals=list(range(len(names))),
                ticktext=names, range=[-0.3, len(names) - 0.7] if len(names) > 1 else [-1, 1])


def _mixer_order(name: str) -> tuple[int, str]:
    order = list(MIXER_COLORS)
    return (order.index(name) if name in order else len(order), name)


def mixer_figure(front: Front):
    """Grouped bars: per stage, how many front members use each mixer."""
    import plotly.graph_objects as go

    members = [m.trial for m in front.members]
    n_stages = max((len(t.stages) for t in members), default=0)
    counts: dict[str, list[int]] = {}
    for i in range(n_stages):
        for t in members:
            for mixer in set(t.stages[i].mixer.split("+")) if i < len(t.stages) else ():
                counts.setdefault(mixer, [0] * n_stages)[i] += 1
    fig = go.Figure()
    for mixer in sorted(counts, key=_mixer_order):
        fig.add_trace(go.Bar(name=mixer, x=[f"stage {i}" for i in range(n_stages)], y=counts[mixer],
                             marker_color=MIXER_COLORS.get(mixer, "#7f7f7f"),
                             hovertemplate=f"{mixer}: %{{y}} of {len(members)} front members<extra>%{{x}}</extra>"))
    fig.update_layout(barmode="group", height=380, template="plotly_white", legend_title_text="mixer",
                      yaxis=dict(title="front members", dtick=1, rangemode="tozero"),
                      margin=dict(t=30, l=60, r=30, b=40))
    return fig


def curves_figure(report: ParetoReport):
    """val/acc1 against epoch for every finished trial with a logged history."""
    import plotly.graph_objects as go

    main = report.fronts[0]
    fig = go.Figure()
    shown: set[str] = set()
    trials = sorted(report.sweep.finished, key=lambda t: (main.is_member(t), t.is_baseline))  # winners on top
    for t in trials:
        curve = t.history.get(ACCURACY) or []
        if not curve:
            continue
        member = main.is_member(t)
        group = t.family if t.is_baseline else ("searched, on the front" if member else "searched")
        fig.add_trace(go.Scatter(
            x=[e for e, _ in curve], y=[v for _, v in curve], mode="lines+markers", name=group, legendgroup=group,
            showlegend=group not in shown, hovertext=hover_text(t), hoverinfo="text",
            line=dict(color=family_color(t.family), width=3.5 if member else 1.5 if t.is_baseline else 1.2),
            marker=dict(symbol="diamond" if t.is_baseline else "circle", size=8 if t.is_baseline else 5),
            opacity=1.0 if member or t.is_baseline else 0.55))
        shown.add(group)
    fig.update_layout(height=420, template="plotly_white", hoverlabel=dict(align="left"),
                      xaxis=dict(title="epoch", dtick=1), yaxis=dict(title=f"{ACCURACY} (%)"),
                      margin=dict(t=30, l=60, r=30, b=40))
    return fig


def confirmation_section(report: ParetoReport) -> str:
    """Intervals per architecture and the verdict on every claim, or how to get them."""
    from .plots import confirmed_title

    c = report.confirmation
    head = "<section id='confirmation'><h2>Do the verdicts hold? (<code>mfsearch confirm</code>)</h2>"
    if c is None:
        return (head + "<p class='note'>Not confirmed yet: every 'dominates' above rests on one seed at the sweep's "
                "fidelity. Retrain the front and the baselines with several seeds at a larger budget: "
                f"<code>mfsearch confirm {html.escape(report.sweep.name)} --tracking-uri "
                f"{html.escape(report.sweep.tracking_uri)}</code></p></section>")
    rows = []
    for a in sorted(c.archs, key=lambda a: -(a.val_interval.mean if a.val_interval else -1)):
        v, t = a.val_interval, a.test_interval
        rows.append([html.escape(a.label), _num(a.macs / 1e6, 2), _num(a.sweep_acc, 2),
                     html.escape(v.text() if v else "-"), html.escape(_range(v)), html.escape(t.text() if t else "-"),
                     html.escape(a.stages)])
    archs = _table("confirmed-table", ["architecture", "MACs M", f"sweep {ACCURACY}", f"{ACCURACY} mean ± 95 %",
                                       "interval", "test/acc1", "stages"], rows)
    rows = []
    for k in c.claims:
        d = k.comparison.difference if k.comparison else None
        rows.append([html.escape(c.arch(k.arch).label), html.escape(c.arch(k.baseline).label),
                     "yes" if k.claimed_by_sweep else "", _num(d.mean if d else None, 2), html.escape(_range(d)),
                     f"<b class='verdict-{k.verdict}'>{k.verdict}</b>"])
    claims = _table("claims-table", ["A", "X (baseline, no fewer MACs)", "sweep said A beats X",
                                     f"Δ {ACCURACY}", "95 % interval", "verdict"], rows)
    return (head + f"<p class='note'>{html.escape(confirmed_title(c))}. Paired t-test over the shared seeds: "
            "confirmed when the interval of the difference lies above 0, refuted below 0, unconfirmed when it "
            f"holds 0. test/acc1 is reported, never used to select.</p>{archs}{claims}</section>")


def _range(i) -> str:
    return "-" if i is None or i.n < 2 else f"[{i.low:.2f}, {i.high:.2f}]"


def _table(table_id: str, head: list[str], rows: list[list[str]]) -> str:
    body = "".join("<tr>" + "".join(f"<td class='num'>{c}</td>" if c.startswith("<!--n-->") else f"<td>{c}</td>"
                                    for c in row) + "</tr>" for row in rows)
    return (f"<table id='{table_id}'><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{body}</tbody></table>")


def baselines_table(front: Front, report: ParetoReport | None = None) -> str:
    rows = []
    beaten_by: dict[str, list[str]] = {}
    for m in front.members:
        for b in m.dominates:
            verdict = report.verdict(m.trial, b) if report else "unconfirmed"
            beaten_by.setdefault(b.run_id, []).append(f"{m.trial.label} ({verdict})")
    baselines = [t for t in front.compared if t.is_baseline] + [t for t in front.lower_fidelity if t.is_baseline]
    for t in sorted(baselines, key=lambda t: t.metrics[M.COST_MACS]):
        m = t.metrics
        cells = [f"<span style='color:{family_color(t.family)};font-weight:bold'>{html.escape(t.family)}</span>",
                 html.escape(t.trial_id), _num(m[ACCURACY], 2), _num(m[M.COST_MACS] / 1e6, 2),
                 _num(m[M.COST_PARAMS] / 1e6, 3), _num(m.get(M.COST_LATENCY_MS), 2), _num(t.epochs, 0),
                 "yes" if front.is_member(t) else "", html.escape(", ".join(beaten_by.get(t.run_id, [])) or "-"),
                 html.escape(t.describe())]
        rows.append("<tr>" + "".join(f"<td class='num'>{c}</td>" if c.startswith("<!--n-->") else f"<td>{c}</td>"
                                     for c in cells) + "</tr>")
    head = ["family", "trial", f"{ACCURACY} %", "MACs M", "params M", "latency ms", "epochs", "on front",
            "dominated by", "stages (mixer xdepth @dim)"]
    return ("<table id='baselines-table'><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _num(value, digits: int) -> str:
    return "<!--n-->-" if value is None else f"<!--n-->{value:,.{digits}f}"


def figure_ids() -> list[str]:
    """The chart containers every dashboard has (tests check each one renders)."""
    return ["chart-pareto", "chart-parallel", "chart-mixers", "chart-curves"]
