"""`mfsearch confirm`: do the sweep's verdicts survive more seeds and a longer training?"""
from __future__ import annotations

import argparse
import math

from .options import TRACKING_URI_HELP, parse_sets
from .table import format_table

EPILOG = """examples:
  mfsearch confirm mixer_per_stage                       # the front, 3 seeds, 2x epochs on 2x images
  mfsearch confirm mixer_per_stage --top-k 3 --seeds 5 --epochs 20
  mfsearch confirm mixer_per_stage --run-id 3f2a...c9 --run-id 77b1...02
  mfsearch confirm mixer_per_stage --set data.train_subset=20000 --address auto --storage-path /shared/runs
  mfsearch confirm mixer_per_stage --resume              # after an interruption

Every baseline family of the sweep is retrained too, with the same seeds. Per architecture: mean and
95 % Student-t interval of val/acc1 over the seeds, and test/acc1 (reported, never used to select).
Per claim "A beats baseline X" (A no more MACs than X): the paired t-test of val/acc1 over the
shared seeds — confirmed when the 95 % interval of the difference is above 0, refuted when below,
unconfirmed otherwise. Kendall's tau compares the sweep's ranking with the confirmed one and is
logged on the sweep's run (confirm/kendall_tau): how far the sweep's fidelity can be trusted.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("confirm", help="retrain chosen architectures and the baselines with several seeds "
                                       "at a larger budget, and judge the sweep's claims",
                       description="Retrain the sweep's chosen architectures and every baseline family with the "
                                   "same seeds at a larger budget, in parallel on Ray, logged to MLflow as nested "
                                   "runs of one confirm run; report intervals, paired verdicts and the rank "
                                   "correlation between sweep and confirmation.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="sweep name (its MLflow experiment) or the sweep's parent run id")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--pareto", action="store_true", help="the searched trials on the val/acc1-vs-MACs front "
                                                             "(default)")
    which.add_argument("--top-k", type=int, metavar="K", help="the K most accurate searched trials at full fidelity")
    which.add_argument("--run-id", action="append", metavar="ID", help="a trial's MLflow run id; repeatable")
    p.add_argument("--seeds", type=int, default=3, help="training seeds, shared by every architecture (default 3)")
    p.add_argument("--first-seed", type=int, default=1, help="seeds are FIRST..FIRST+SEEDS-1 (default 1)")
    p.add_argument("--epochs", type=int, help="epochs per training (default: 2 x the sweep's)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override a field of the sweep's space, e.g. data.train_subset=20000 (default: 2 x the "
                        "sweep's training images); repeatable")
    p.add_argument("--name", help="confirmation name: Tune folder and MLflow run (default: <sweep>-confirm)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted confirmation of this sweep")
    p.add_argument("--trust-state", action="store_true",
                   help="with --resume: accept the folder's state as it is and re-sign it (when --resume refuses a "
                        "file left unsigned by a driver killed mid-write, and the folder is yours alone)")
    g = p.add_argument_group("execution (as for `mfsearch run`)")
    g.add_argument("--address", help="join a running Ray cluster (e.g. auto); default: start a local Ray")
    g.add_argument("--storage-path", help="where Tune keeps trial results (default: ./mfsearch_runs)")
    g.add_argument("--max-concurrent", type=int, help="trainings at once (default: as CPUs/GPUs allow)")
    g.add_argument("--cpus-per-trial", type=float, help="CPUs per training (default: the sweep's)")
    g.add_argument("--gpus-per-trial", type=float, help="GPUs per training (default: the sweep's)")
    p.add_argument("--tracking-uri", default=None, help=TRACKING_URI_HELP)
    p.set_defaults(func=run)


def options_from(args: argparse.Namespace):
    from ..search.confirm import ConfirmOptions

    overrides = parse_sets(args.set)
    for opt, key in (("max_concurrent", "resources.max_concurrent"), ("cpus_per_trial", "resources.cpus_per_trial"),
                     ("gpus_per_trial", "resources.gpus_per_trial")):
        if getattr(args, opt) is not None:
            overrides[key] = getattr(args, opt)
    selection = "run-id" if args.run_id else "top-k" if args.top_k is not None else "pareto"
    return ConfirmOptions(selection=selection, top_k=args.top_k, run_ids=tuple(args.run_id or ()), seeds=args.seeds,
                          first_seed=args.first_seed, epochs=args.epochs, overrides=overrides, address=args.address,
                          storage_path=args.storage_path, tracking_uri=args.tracking_uri, name=args.name,
                          resume=args.resume, trust_state=args.trust_state)


def run(args: argparse.Namespace) -> int:
    from ..search.confirm import run_confirm

    report = run_confirm(args.sweep, options_from(args))
    print_report(report)
    return 0


def print_report(report) -> None:
    from ..analysis.fronts import epochs_text

    tau = report.kendall_tau
    print(f"\nconfirm {report.sweep}: {len(report.archs)} architectures x {len(report.seeds)} seeds "
          f"({', '.join(map(str, report.seeds))}) at {epochs_text(report.epochs)} on "
          f"{report.train_images or 'all'} training images (sweep: {epochs_text(report.sweep_epochs)}) in "
          f"{report.wall_time_s / 60:.1f} min")
    order = sorted(report.archs, key=lambda a: -(a.val_interval.mean if a.val_interval else -1))
    sweep_rank = {a.key: i + 1 for i, a in enumerate(sorted((a for a in report.archs if a.sweep_acc is not None),
                                                             key=lambda a: -a.sweep_acc))}
    rows = []
    for i, a in enumerate(order):
        val, test = a.val_interval, a.test_interval
        rows.append([i + 1, sweep_rank.get(a.key, "-"), a.label, f"{a.macs / 1e6:.2f}",
                     "-" if a.sweep_acc is None else f"{a.sweep_acc:.2f}", val.text() if val else "-",
                     _ci(val), test.text() if test else "-", a.stages])
    print("\nval/acc1 over seeds: mean ± half-width of the 95 % interval [interval]; rank now / in the sweep:")
    print(format_table(["rank", "sweep", "architecture", "MACs M", "sweep val/acc1", "val/acc1", "95 % interval",
                        "test/acc1", "stages"], rows, align="rrlrrrlrl"))
    if report.claims:
        rows = []
        for c in sorted(report.claims, key=lambda c: (c.arch, c.baseline)):
            a, x = report.arch(c.arch), report.arch(c.baseline)
            d = c.comparison.difference if c.comparison else None
            rows.append([a.label, x.label, f"{a.macs / x.macs:.2f}", "yes" if c.claimed_by_sweep else "",
                         "-" if d is None else f"{d.mean:+.2f}", _ci(d),
                         "-" if not c.comparison or math.isnan(c.comparison.p_value) else f"{c.comparison.p_value:.3f}",
                         c.verdict.upper() if c.claimed_by_sweep else c.verdict])
        print("\nclaims 'A beats X' (A has no more MACs than X; every searched A, and every baseline A the sweep "
              "said dominates X): paired t-test of val/acc1 over the shared seeds")
        print(format_table(["A", "X (baseline)", "MACs A/X", "sweep said", "Δ val/acc1", "95 % interval",
                            "p", "verdict"], rows, align="llrlrlrl"))
        counts = report.counts()
        print(f"{counts['confirmed']} confirmed, {counts['refuted']} refuted, {counts['unconfirmed']} unconfirmed "
              f"(confirmed: interval above 0; refuted: below 0; unconfirmed: it holds 0)")
    n = len(report.ranked)
    print(f"\nrank agreement sweep vs confirmation over {n} architectures: Kendall tau = "
          + ("n/a" if math.isnan(tau) else f"{tau:+.2f}")
          + " (logged on the sweep run as confirm/kendall_tau; 1 = same order, 0 = unrelated, -1 = reversed)")
    if report.experiment_id:
        from ..tracking.mlflow_views import CONFIRM_VIEW, view_url
        from .run_cmd import MLFLOW_UI
        print(f"in MLflow (`mlflow ui` on the same store): {view_url(MLFLOW_UI, report.experiment_id, CONFIRM_VIEW)}")


def _ci(i) -> str:
    if i is None or i.n < 2 or math.isnan(i.low):
        return "-"
    return f"[{i.low:.2f}, {i.high:.2f}]"
