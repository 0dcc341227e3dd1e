"""`mfsearch train`: train one architecture, validate each epoch, test once, log to MLflow."""
from __future__ import annotations

import argparse

from ..errors import MfsearchError
from .options import add_data_options, add_tracking_options, data_fields, parse_sets

EXPERIMENT = "mfsearch-train"
# Relative to the working directory, like the default ./mlflow.db; recorded on each run as an
# absolute path (mfsearch/training/resume.py says why the state stays on local disk).
DEFAULT_CHECKPOINT_DIR = "mfsearch_checkpoints"

EPILOG = """examples:
  mfsearch train caformer_s18 --data cifar10 --epochs 10 --recipe small
  MFSEARCH_DATA_DIR=../shared/data mfsearch train arch.yaml --train-subset 10000 --set lr=1e-3
  mfsearch train convformer_s18 --data imagefolder --data-root /data/imagenet --recipe paper
  mfsearch train --resume 3f2a...   # continue a killed training from its last epoch, in the same run

--set keys: recipe fields (epochs, batch_size, optimizer, lr, weight_decay, warmup_epochs, mixup,
cutmix, label_smoothing, drop_path_rate, head_dropout, grad_clip, ema, precision, channels_last,
compile, seed, augment.rand_augment, augment.random_erasing, ...), data.<field> for the data
config and arch.<field> for the architecture (arch.mlp_act=gelu, arch.stages[2].mixer=attention).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one architecture and log it to MLflow",
                       description="Train a preset or an arch YAML with a recipe; validates every epoch on "
                                   "data held out from train, tests once at the end, and logs params, "
                                   "per-epoch metrics, cost, the resolved arch YAML and the weights to MLflow.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", nargs="?", help="preset name (see `mfsearch models`) or path to an arch YAML file")
    add_data_options(p)
    g = p.add_argument_group("training")
    g.add_argument("--recipe", default=None, help="paper or small (default: small)")
    g.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    g.add_argument("--batch-size", type=int, default=None, help="batch size (default: the recipe's)")
    g.add_argument("--seed", type=int, default=None, help="training seed (default: the recipe's)")
    g.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field; repeatable")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_tracking_options(p, EXPERIMENT)
    p.add_argument("--run-name", default=None, help="MLflow run name")
    r = p.add_argument_group("checkpoints")
    r.add_argument("--checkpoint-dir", default=None,
                   help=f"keep the training state (rewritten every epoch, removed once the run finished) in "
                        f"DIR/<run id>/ (default: ./{DEFAULT_CHECKPOINT_DIR})")
    r.add_argument("--resume", metavar="RUN_ID", default=None,
                   help="continue the killed or failed run RUN_ID from its last epoch, with its own arch, data "
                        "and recipe, logging to the same MLflow run (give --tracking-uri if not the default)")
    p.set_defaults(func=run)


def build_configs(args: argparse.Namespace):
    """The validated (arch overrides, DataConfig, TrainConfig) of a command line."""
    from ..data import DataConfig
    from ..schema import parse_dataclass, to_plain
    from ..training.recipes import resolve_recipe

    sets = parse_sets(args.set)
    arch_sets = {k[len("arch."):]: v for k, v in sets.items() if k.startswith("arch.")}
    data_sets = {k[len("data."):]: v for k, v in sets.items() if k.startswith("data.")}
    recipe_sets = {k: v for k, v in sets.items() if not k.startswith(("arch.", "data."))}
    for opt in ("epochs", "batch_size", "seed"):
        if getattr(args, opt) is not None:
            recipe_sets[opt] = getattr(args, opt)
    preset = args.arch if "/" not in args.arch and not args.arch.endswith((".yaml", ".yml")) else None
    recipe = resolve_recipe(args.recipe or "small", preset, recipe_sets)
    data_raw = {**to_plain(DataConfig()), **data_fields(args), **data_sets}
    data = parse_dataclass(DataConfig, data_raw, "data")
    return arch_sets, data, recipe


def run(args: argparse.Namespace) -> int:
    from ..api import resolve_arch
    from ..training.run import train

    if args.resume:
        return resume(args)
    if args.arch is None:
        raise MfsearchError("train: give an architecture (a preset name or an arch YAML), or --resume RUN_ID")
    arch_sets, data, recipe = build_configs(args)
    arch = resolve_arch(args.arch, **arch_sets)
    result = train(arch, data, recipe, tracking_uri=args.tracking_uri, experiment=args.experiment,
                   run_name=args.run_name, progress=not args.no_progress,
                   checkpoint_dir=args.checkpoint_dir or DEFAULT_CHECKPOINT_DIR)
    return summary(args.arch, result, args.tracking_uri)


# With --resume, the run's own settings are used: any of these would silently not apply.
NOT_WITH_RESUME = ("arch", "data", "data_root", "img_size", "train_subset", "val_subset", "val_fraction", "workers",
                   "recipe", "epochs", "batch_size", "seed", "set", "run_name", "checkpoint_dir")


def resume(args: argparse.Namespace) -> int:
    from ..training.resume import resume as resume_run

    given = [name for name in NOT_WITH_RESUME if getattr(args, name, None) not in (None, [])]
    if args.experiment != EXPERIMENT:
        given.append("experiment")
    if given:
        options = ", ".join(name if name == "arch" else "--" + name.replace("_", "-") for name in given)
        raise MfsearchError(f"--resume continues run {args.resume} with its own settings; drop {options}")
    result = resume_run(args.resume, args.tracking_uri, progress=not args.no_progress)
    return summary(f"run {args.resume}", result, args.tracking_uri)


def summary(name: str, result, tracking_uri: str | None) -> int:
    m = result.metrics
    print(f"\n{name}: val/acc1 {m.get('val/acc1', float('nan')):.2f}  test/acc1 {m.get('test/acc1', float('nan')):.2f}"
          f"  params {m['cost/params'] / 1e6:.2f}M  MACs {m['cost/macs'] / 1e6:.1f}M")
    print(f"MLflow run {result.run_id} — open with: mlflow ui --backend-store-uri "
          f"{_uri(tracking_uri)}")
    return 0


def _uri(uri):
    from ..tracking import resolve_tracking_uri
    return resolve_tracking_uri(uri)
