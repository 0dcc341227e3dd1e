"""`mfsearch retrain`: a chosen architecture trained from scratch at a full budget, tested, tracked."""
from __future__ import annotations

import argparse

from .options import parse_sets

EPILOG = """examples:
  mfsearch retrain exported/searched-a97dcbce --epochs 30
  mfsearch retrain exported/searched-a97dcbce --full-train --set lr=1e-3
  mfsearch retrain 6c70a6d919ad42938c721176a63ecc6f --recipe paper --data-root /data/imagenet

By default: the sweep's data and recipe with the recipe's own budget (small: 30 epochs, paper: 300)
instead of the search's short one; validation every epoch, the test split once at the end. The run
goes to the sweep's MLflow store when it is reachable (else --tracking-uri / ./mlflow.db), in
experiment <sweep>-retrain, tagged mfsearch.source_run_id=<the trial's run>.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrain", help="retrain an exported or searched architecture at a full budget",
                       description="Train an architecture chosen by a search from scratch at a longer budget, "
                                   "optionally on train+val, evaluate it on the test split and log it to MLflow "
                                   "linked to the trial it came from.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="an export folder (from `mfsearch export`) or a trial's MLflow run id")
    p.add_argument("--epochs", type=int, help="epochs (default: the recipe's own budget)")
    p.add_argument("--recipe", help="small or paper (default: the sweep's recipe and settings)")
    p.add_argument("--full-train", action="store_true",
                   help="train on train+val (no validation split); the test split still measures it")
    p.add_argument("--data-root", help="dataset folder, when it moved since the sweep")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a recipe field (lr=1e-3) or data.<field>; repeatable")
    p.add_argument("--tracking-uri", help="MLflow store: where a run id is looked up and the run is logged")
    p.add_argument("--experiment", help="MLflow experiment (default: <sweep>-retrain)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export.retrain import retrain

    sets = parse_sets(args.set)
    if args.data_root:
        sets["data.root"] = args.data_root
    result = retrain(args.source, epochs=args.epochs, recipe=args.recipe, full_train=args.full_train,
                     tracking_uri=args.tracking_uri, experiment=args.experiment, sets=sets,
                     progress=not args.no_progress)
    m = result.metrics
    val = f"val/acc1 {m['val/acc1']:.2f}  " if "val/acc1" in m else ""
    print(f"\nretrained: {val}test/acc1 {m.get('test/acc1', float('nan')):.2f}  params "
          f"{m['cost/params'] / 1e6:.3f} M  MACs {m['cost/macs'] / 1e6:.2f} M")
    print(f"MLflow run {result.run_id} (tag mfsearch.source_run_id links the trial it came from)")
    return 0
