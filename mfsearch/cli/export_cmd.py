"""`mfsearch export`: chosen architectures of a sweep as loadable, deployable, documented folders."""
from __future__ import annotations

import argparse

from .options import add_sweep_options

EPILOG = """examples:
  mfsearch export mixer_per_stage --pareto --out exported/
  mfsearch export mixer_per_stage --top-k 3 --out top3/ --format onnx,torchscript
  mfsearch export smoke --run-id 6c70a6d919ad42938c721176a63ecc6f --out one/ --register smoke-winner

Each folder: arch.yaml, weights.safetensors, model.onnx (checked with onnxruntime against PyTorch,
max abs logit difference <= 1e-4), model.ts with --format torchscript, README.md (model card) and
export.json (what `mfsearch retrain DIR` reads). Reload in Python with
  mfsearch.create_model("DIR/arch.yaml", pretrained="DIR/weights.safetensors")
--top-k and --pareto compare the trials at the sweep's highest fidelity (epochs reached).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export chosen architectures of a sweep (weights, ONNX, model card)",
                       description="Export the best, the Pareto-optimal or chosen trials of a sweep: one folder "
                                   "per architecture with its weights, deployable forms checked against "
                                   "PyTorch, and a model card. Nothing is written unless every model exports.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sweep_options(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--top-k", type=int, metavar="K", help="the K most accurate trials at full fidelity")
    which.add_argument("--run-id", action="append", metavar="ID", help="a trial's MLflow run id; repeatable")
    which.add_argument("--pareto", action="store_true", help="the Pareto front of val/acc1 against MACs")
    p.add_argument("--out", required=True, help="output folder (must be empty or absent unless --overwrite)")
    p.add_argument("--format", default="onnx", help="comma-separated: onnx, torchscript; '' for weights only "
                                                    "(default: onnx)")
    p.add_argument("--register", metavar="NAME", help="also register each model as a version of NAME in "
                                                      "MLflow's model registry")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..export.exporter import Selection, export_sweep

    selection = Selection(top_k=args.top_k, run_ids=tuple(args.run_id or ()), pareto=args.pareto)
    exported = export_sweep(args.sweep, args.out, selection, tracking_uri=args.tracking_uri, formats=args.format,
                            register=args.register, overwrite=args.overwrite)
    print(f"\nexported {len(exported)} architecture{'s' if len(exported) != 1 else ''} to {args.out}:")
    for e in exported:
        checks = "; ".join(f"{k} max diff {v:.1e}" for k, v in e.checks.items())
        reg = f"; registered {args.register} v{e.registered_version}" if e.registered_version else ""
        print(f"  {e.folder}  val/acc1 {e.trial.metrics['val/acc1']:.2f}  MACs "
              f"{e.trial.metrics['cost/macs'] / 1e6:.2f} M" + (f"  ({checks})" if checks else "") + reg)
    if exported:
        first = exported[0].folder
        print(f"\nload: mfsearch.create_model(\"{first}/arch.yaml\", pretrained=\"{first}/weights.safetensors\")"
              f"\nretrain at a full budget: mfsearch retrain {first} --epochs 30")
    return 0
