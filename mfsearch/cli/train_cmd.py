"""`mfsearch train`: train one architecture, validate each epoch, test once, log to MLflow."""
from __future__ import annotations

import argparse

from .options import add_data_options, add_tracking_options, data_fields, parse_sets

EPILOG = """examples:
  mfsearch train caformer_s18 --data cifar10 --epochs 10 --recipe small
  MFSEARCH_DATA_DIR=../shared/data mfsearch train arch.yaml --train-subset 10000 --set lr=1e-3
  mfsearch train convformer_s18 --data imagefolder --data-root /data/imagenet --recipe paper

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
    p.add_argument("arch", help="preset name (see `mfsearch models`) or path to an arch YAML file")
    add_data_options(p)
    g = p.add_argument_group("training")
    g.add_argument("--recipe", default="small", help="paper or small (default: small)")
    g.add_argument("--epochs", type=int, default=None, help="epochs (default: the recipe's)")
    g.add_argument("--batch-size", type=int, default=None, help="batch size (default: the recipe's)")
    g.add_argument("--seed", type=int, default=None, help="training seed (default: the recipe's)")
    g.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field; repeatable")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_tracking_options(p, "mfsearch-train")
    p.add_argument("--run-name", default=None, help="MLflow run name")
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
    recipe = resolve_recipe(args.recipe, preset, recipe_sets)
    data_raw = {**to_plain(DataConfig()), **data_fields(args), **data_sets}
    data = parse_dataclass(DataConfig, data_raw, "data")
    return arch_sets, data, recipe


def run(args: argparse.Namespace) -> int:
    from ..api import resolve_arch
    from ..training.run import train

    arch_sets, data, recipe = build_configs(args)
    arch = resolve_arch(args.arch, **arch_sets)
    result = train(arch, data, recipe, tracking_uri=args.tracking_uri, experiment=args.experiment,
                   run_name=args.run_name, progress=not args.no_progress)
    m = result.metrics
    print(f"\n{args.arch}: val/acc1 {m.get('val/acc1', float('nan')):.2f}  test/acc1 {m.get('test/acc1', float('nan')):.2f}"
          f"  params {m['cost/params'] / 1e6:.2f}M  MACs {m['cost/macs'] / 1e6:.1f}M")
    print(f"MLflow run {result.run_id} — open with: mlflow ui --backend-store-uri "
          f"{_uri(args.tracking_uri)}")
    return 0


def _uri(uri):
    from ..tracking import resolve_tracking_uri
    return resolve_tracking_uri(uri)
