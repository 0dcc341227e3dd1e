"""`mfsearch dashboard`: one self-contained HTML page about a sweep (open it from disk, offline)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_sweep_options

EPILOG = """examples:
  mfsearch dashboard mixer_per_stage                 # writes ./mixer_per_stage-dashboard.html
  mfsearch dashboard smoke -o results/smoke.html --tracking-uri sqlite:///runs/mlflow.db

The page: the Pareto scatter (hover: per-stage architecture), parallel coordinates over the per-stage
choices coloured by accuracy, the mixers of each stage among front members, accuracy per epoch and
the baselines table. dashboards/README.md explains it, with the MLflow UI views that complement it.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="write a self-contained HTML dashboard of a sweep",
                       description="Write one HTML page (plotly.js inlined: no server, no network) showing a "
                                   "sweep's fronts, per-stage choices, winners' mixers, learning curves and the "
                                   "paper's families.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_options(p)
    p.add_argument("-o", "--out", help="the HTML file (default: ./<sweep>-dashboard.html)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.dashboard import write_dashboard
    from ..analysis.fronts import pareto_report
    from ..analysis.sweep_data import latest_confirmation, load_sweep
    from ..errors import MfsearchError

    if args.out and Path(args.out).is_dir():
        raise MfsearchError(f"-o {args.out} is a folder; give a file name such as {Path(args.out) / 'dashboard.html'}")
    sweep = load_sweep(args.sweep, args.tracking_uri, history=True)
    out = Path(args.out or f"{sweep.name}-dashboard.html")
    path = write_dashboard(pareto_report(sweep, confirmation=latest_confirmation(sweep)), out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, opens offline in any browser)")
    return 0
