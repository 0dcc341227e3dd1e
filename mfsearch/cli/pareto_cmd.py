"""`mfsearch pareto`: the Pareto fronts of a sweep against the paper's families, as a table, PNG and HTML."""
from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_sweep_options
from .table import format_table

EPILOG = """examples:
  mfsearch pareto mixer_per_stage                      # table; files in ./mixer_per_stage-pareto/
  mfsearch pareto 3f2a...c9 --out results/             # by the sweep's parent run id
  mfsearch pareto smoke --tracking-uri sqlite:///runs/mlflow.db --no-log

Fronts: val/acc1 (up) against MACs, params and - when every trial measured it - latency (down),
among the trials that reached the sweep's highest fidelity (epochs); trials stopped earlier are
plotted apart and never compared. Hypervolume reference: val/acc1 0 % and 1.1 x the largest cost
compared; values are shares of the box up to (100 %, cost 0). The files, hypervolumes and front
are also logged to the sweep's parent run (artifacts under pareto/).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", help="Pareto fronts of a sweep (table, PNG, interactive HTML)",
                       description="Show where the searched architectures stand against the paper's families: "
                                   "the non-dominated trials for accuracy vs MACs / params / latency at one "
                                   "fidelity, hypervolumes, and which baselines each front member dominates.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_options(p)
    p.add_argument("--out", help="folder for front.json, front.csv, pareto.png, pareto.html "
                                 "(default: ./<sweep>-pareto)")
    p.add_argument("--no-log", action="store_true", help="do not log the files to the sweep's MLflow run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.fronts import pareto_report
    from ..analysis.pareto_files import log_to_sweep, write_files
    from ..analysis.sweep_data import latest_confirmation, load_sweep

    sweep = load_sweep(args.sweep, args.tracking_uri)
    report = pareto_report(sweep, confirmation=latest_confirmation(sweep))
    print_report(report)
    files = write_files(report, Path(args.out or f"{sweep.name}-pareto"))
    if not args.no_log:
        log_to_sweep(report, files)
    print(f"\nwrote {', '.join(str(p) for p in files.all())}"
          + ("" if args.no_log else f"\nlogged to the sweep run {sweep.parent_run_id} (artifacts pareto/)"))
    return 0


def print_report(report) -> None:
    from ..analysis.fronts import ACCURACY, epochs_text

    fronts = report.fronts
    main = fronts[0]
    keys = "".join(f.axis.key[0].upper() for f in fronts)
    rows = []
    for t in sorted(main.compared, key=lambda t: t.metrics[main.axis.metric]):
        marks = " ".join(f.axis.key[0].upper() if f.is_member(t) else "." for f in fronts)
        member = next((m for m in main.members if m.trial.run_id == t.run_id), None)
        beats = report.beats_text(member) if member else ""
        m = t.metrics
        rows.append([marks, t.family, t.trial_id, f"{m[ACCURACY]:.2f}", _num(m.get("cost/macs"), 1e6, 2),
                     _num(m.get("cost/params"), 1e6, 3), _num(m.get("cost/latency_ms"), 1, 2), beats, t.describe()])
    print(f"sweep {report.sweep.name}: {len(report.sweep.finished)} finished trials; compared at "
          f"{epochs_text(main.fidelity)}: {len(main.compared)}"
          + (f"; stopped earlier (shown, not compared): {len(main.lower_fidelity)}" if main.lower_fidelity else ""))
    print(f"front membership per cost ({', '.join(f'{f.axis.key[0].upper()} = {f.axis.key}' for f in fronts)}; "
          f". = dominated); 'beats' = baselines dominated on {main.axis.key} at {epochs_text(main.fidelity)}, "
          "one seed, with the verdict of `mfsearch confirm` (unconfirmed until it has run)\n")
    print(format_table(["front " + " ".join(keys), "family", "trial", "val/acc1", "MACs M", "params M", "latency ms",
                        "beats", "stages (mixer xdepth @dim)"], rows, align="lllrrrrll"))
    print()
    hv_rows = [[f.axis.key, f.fidelity, len(f.compared), len(f.members), f"{f.hypervolume:.4f}",
                f"{f.hypervolume_baselines:.4f}", f"{f.reference[1] / f.axis.scale:.4g} {f.axis.unit}"]
               for f in fronts]
    print(format_table(["cost", "epochs", "trials", "front", "HV all", "HV baselines", "reference cost"], hv_rows,
                       align="lrrrrrr"))
    print("HV: share of the box from (val/acc1 0 %, reference cost) to (100 %, 0) dominated by the trials.")
    if report.confirmation is None:
        print(f"\nno confirmation yet: the front rests on one seed at {epochs_text(main.fidelity)}. Retrain it and "
              f"the baselines with 3 seeds at a larger budget:\n  mfsearch confirm {report.sweep.name} "
              f"--tracking-uri {report.sweep.tracking_uri}")
    else:
        from .confirm_cmd import print_report as print_confirmation
        print_confirmation(report.confirmation)


def _num(value: float | None, scale: float, digits: int) -> str:
    return "-" if value is None else f"{value / scale:.{digits}f}"
