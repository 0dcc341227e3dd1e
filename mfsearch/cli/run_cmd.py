"""`mfsearch run`: a sweep over a search-space YAML on Ray Tune, tracked in MLflow."""
from __future__ import annotations

import argparse

from .. import metrics as M
from .options import parse_sets
from .table import format_table

EPILOG = """examples:
  mfsearch run search_spaces/mixer_per_stage.yaml
  mfsearch run search_spaces/mixer_per_stage.yaml --num-samples 40 --data-root ~/data/cifar10
  mfsearch run search_spaces/imagenet_mixer_per_stage.yaml --address auto --storage-path /shared/runs \\
      --tracking-uri http://mlflow:5000 --gpus-per-trial 1
  mfsearch run search_spaces/mixer_per_stage_oneshot.yaml   # one supernet, then inherited-weight search
  mfsearch run --resume mixer_per_stage      # continue an interrupted sweep

By default Ray runs locally and MLflow writes ./mlflow.db; open it with
  mlflow ui --backend-store-uri sqlite:///mlflow.db
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an architecture search (Ray Tune + MLflow)",
                       description="Search the architectures of a search-space YAML: the paper's families run "
                                   "first as baselines, candidates outside the constraints are counted and "
                                   "never trained, every trial is logged to MLflow under one parent run, and "
                                   "the Pareto front (accuracy vs MACs) is printed at the end. With "
                                   "`search: {algorithm: one-shot}` one weight-sharing supernet is trained instead "
                                   "and num_samples sub-networks are scored with its inherited weights.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("space", nargs="?", help="search-space YAML (see search_spaces/)")
    p.add_argument("--resume", metavar="NAME", help="continue the interrupted sweep NAME")
    p.add_argument("--name", help="sweep name: Tune folder and MLflow experiment (default: the YAML's name)")
    p.add_argument("--trust-state", action="store_true",
                   help="with --resume: accept the folder's state as it is and re-sign it (when --resume refuses a "
                        "file left unsigned by a driver killed mid-write, and the folder is yours alone)")
    g = p.add_argument_group("execution")
    g.add_argument("--address", help="join a running Ray cluster (e.g. auto); default: start a local Ray")
    g.add_argument("--storage-path", help="where Tune keeps trial results (default: ./mfsearch_runs; "
                                          "shared storage on multi-node clusters)")
    g.add_argument("--num-samples", type=int, help="searched candidates (baselines come on top); one-shot: "
                                                  "sub-networks evaluated with inherited weights")
    g.add_argument("--max-concurrent", type=int, help="trials at once (default: as CPUs/GPUs allow)")
    g.add_argument("--cpus-per-trial", type=float, help="CPUs per trial (fractions allowed)")
    g.add_argument("--gpus-per-trial", type=float, help="GPUs per trial (fractions allowed)")
    g.add_argument("--epochs", type=int, help="epochs of a full-fidelity trial (one-shot: of the supernet)")
    g.add_argument("--data-root", help="dataset folder (overrides the YAML's data.root)")
    g.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                   help="override any field of the YAML, e.g. search.seed=3; repeatable")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite:///./mlflow.db)")
    p.set_defaults(func=run)


def overrides(args: argparse.Namespace) -> dict:
    out = parse_sets(args.set)
    for opt, key in (("num_samples", "search.num_samples"), ("max_concurrent", "resources.max_concurrent"),
                     ("cpus_per_trial", "resources.cpus_per_trial"), ("gpus_per_trial", "resources.gpus_per_trial"),
                     ("epochs", "train.epochs"), ("data_root", "data.root")):
        if getattr(args, opt) is not None:
            out[key] = getattr(args, opt)
    return out


def run(args: argparse.Namespace) -> int:
    from ..errors import MfsearchError
    from ..search import SweepOptions, run_sweep

    if not args.space and not args.resume:
        raise MfsearchError("give a search-space YAML (e.g. search_spaces/mixer_per_stage.yaml) or --resume NAME")
    options = SweepOptions(address=args.address, storage_path=args.storage_path, tracking_uri=args.tracking_uri,
                           name=args.name, overrides=overrides(args), trust_state=args.trust_state)
    result = run_sweep(args.space, options, resume=args.resume)
    print_summary(result)
    return 0


def describe_stages(cfg) -> str:
    """``sepconv x2 @32 | attention x1 @64`` (per-block mixers joined with +)."""
    parts = []
    for s in cfg.stages:
        mixer = "+".join(str(m) for m in s.mixer) if isinstance(s.mixer, tuple) else f"{s.mixer} x{s.depth}"
        parts.append(f"{mixer} @{s.dim}")
    return " | ".join(parts)


MLFLOW_UI = "http://127.0.0.1:5000"   # where `mlflow ui` serves by default


def print_summary(result) -> None:
    from ..analysis.fronts import epochs_text
    from ..tracking.mlflow_views import SWEEP_VIEW, view_url
    from ..config import parse_arch
    from ..pareto import pareto_indices

    done = [t for t in result.trials if t["error"] is None and "val/acc1" in t["metrics"]]
    full = max((int(t["metrics"].get(M.EPOCHS_REACHED, 0)) for t in done), default=0)
    at_full = [t for t in done if int(t["metrics"].get(M.EPOCHS_REACHED, 0)) == full]
    points = [(t["metrics"]["val/acc1"], t["metrics"]["cost/macs"]) for t in at_full]
    front = set(pareto_indices(points, [True, False]))
    rows = []
    for i, t in sorted(enumerate(at_full), key=lambda it: it[1]["metrics"]["cost/macs"]):
        m = t["metrics"]
        stages = describe_stages(parse_arch(t["arch"]))
        rows.append(["*" if i in front else "", t["family"], f"{m['val/acc1']:.2f}", f"{m['cost/macs'] / 1e6:.2f}",
                     f"{m['cost/params'] / 1e6:.3f}", f"{m.get('cost/latency_ms', float('nan')):.2f}", stages])
    print(f"\nsweep {result.name}: {len(result.trials)} trials in {result.wall_time_s / 60:.1f} min; "
          f"{len(result.failed)} failed; {result.rejected} candidate{'s' if result.rejected != 1 else ''} "
          f"rejected by constraints"
          + (f" ({', '.join(f'{k}: {v}' for k, v in result.rejection_reasons.items())})" if result.rejection_reasons else ""))
    o = result.oneshot
    if o:
        print(f"one-shot: supernet trained {epochs_text(o['epochs'])} ({o['sampling']} sampling, {o['paths_per_step']} "
              f"paths per step) in {o['train_s'] / 60:.1f} min; {o['evaluated']} sub-networks evaluated with inherited "
              f"weights ({o['method']}) in {o['search_s']:.0f} s, {o['eval_ms']:.0f} ms each; front of {o['front']}")
        for family, why in o["skipped_baselines"].items():
            print(f"  baseline {family} left out: {why}")
    if rows and o:
        print("\nFront members and baselines (the families' mixer patterns in the supernet), inherited val/acc1, "
              "one supernet; * = Pareto front (val/acc1 up, MACs down), unconfirmed:")
    elif rows:
        print(f"\nTrials at full fidelity ({epochs_text(full)}, one seed each); * = Pareto front (val/acc1 up, "
              "MACs down), unconfirmed:")
    if rows:
        print(format_table(["", "family", "val/acc1", "MACs M", "params M", "latency ms", "stages (mixer xdepth @dim)"],
                           rows, align="llrrrrl"))
    for trial_id, error in result.failed.items():
        print(f"failed {trial_id}: {error}")
    if result.stopped_baselines:
        print(f"note: baselines stopped before full fidelity: {', '.join(result.stopped_baselines)}")
    uri = result.tracking_uri
    print(f"\nOpen in MLflow:  mlflow ui --backend-store-uri {uri}   (experiment {result.name!r}), then its "
          f"trials table:\n  {view_url(MLFLOW_UI, result.experiment_id, SWEEP_VIEW)}")
    print(f"Export the front: mfsearch export {result.name} --pareto --out exported/ --tracking-uri {uri}")
    if o:
        print("\nInherited accuracies rank members of one supernet; they are not stand-alone accuracies. Train the front "
              "and the baselines from scratch, 3 seeds, and see which claims hold:")
    else:
        print("\nThis front rests on one seed at the sweep's fidelity. Check that it survives 3 seeds at a larger "
              "budget (every baseline retrained too):")
    print(f"  mfsearch confirm {result.name} --tracking-uri {uri}")
