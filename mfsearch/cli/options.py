"""Options shared by several commands, defined once."""
from __future__ import annotations

import argparse
from typing import Any

import yaml

from ..yamlio import load_yaml

from ..errors import ConfigError


def parse_value(text: str) -> Any:
    """A ``--set`` value as YAML (``null``, ``true``, ``[1, 2]``), with ``1e-3`` read as a number."""
    try:
        value = load_yaml(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError("--set", f"expected key=value, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data", default=None, choices=["cifar10", "cifar100", "imagefolder", "synthetic"],
                   help="dataset (default: cifar10)")
    g.add_argument("--data-root", default=None,
                   help="dataset folder (default: $MFSEARCH_DATA_DIR/<dataset>, else ~/.cache/mfsearch/data/<dataset>)")
    g.add_argument("--img-size", type=int, default=None, help="input size in px (default: 32 for CIFAR, 224 otherwise)")
    g.add_argument("--train-subset", type=int, default=None, help="class-balanced subset of N training images")
    g.add_argument("--val-subset", type=int, default=None, help="class-balanced subset of N validation images")
    g.add_argument("--val-fraction", type=float, default=None,
                   help="share of train held out for validation (default 0.1)")
    g.add_argument("--workers", type=int, default=None, help="data-loader workers (default: auto)")


TRACKING_URI_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db)"


def add_sweep_options(p: argparse.ArgumentParser) -> None:
    """The sweep a post-sweep command (pareto, dashboard, export) reads, and where it is stored."""
    p.add_argument("sweep", help="sweep name (its MLflow experiment) or the sweep's parent run id")
    p.add_argument("--tracking-uri", default=None, help=TRACKING_URI_HELP)


def add_tracking_options(p: argparse.ArgumentParser, default_experiment: str) -> None:
    g = p.add_argument_group("tracking")
    g.add_argument("--tracking-uri", default=None, help=TRACKING_URI_HELP)
    g.add_argument("--experiment", default=default_experiment, help=f"MLflow experiment (default: {default_experiment})")


def data_fields(args: argparse.Namespace) -> dict[str, Any]:
    mapping = {"data": "dataset", "data_root": "root", "img_size": "img_size", "train_subset": "train_subset",
               "val_subset": "val_subset", "val_fraction": "val_fraction", "workers": "num_workers"}
    return {field: getattr(args, opt) for opt, field in mapping.items() if getattr(args, opt, None) is not None}
