"""`mfsearch retrain`: train a chosen architecture again, from scratch, at a full budget - the step
after a cheap search. Evaluates on the test split, which the search never looked at, and logs to
MLflow with tags that point at the trial it came from.

The source is an export folder (its ``export.json``) or a trial's run id. By default the run uses
the sweep's data and recipe, with the recipe's own epoch budget instead of the search's short one
(``small``: 30, ``paper``: 300), and logs into the sweep's MLflow store when that is a SQLite file on
this machine. A server URI read from an export folder is never contacted unless passed again as
``--tracking-uri``: an export folder may come from someone else, and its URI would receive this
run's parameters and weights.

``--full-train`` trains on train + validation: exactly the images the search trained on and
selected by (``data.train_on_val``), with no validation during the run.
"""
from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

from ..analysis.sweep_data import open_store
from ..errors import ConfigError, MfsearchError
from ..tracking import resolve_tracking_uri
from ..tracking.store import sqlite_path
from ..tracking.tags import (FAMILY_TAG, FULL_TRAIN_TAG, KIND_TAG, NOTE_TAG, PARENT_TAG, SOURCE_SWEEP_TAG, SOURCE_TAG,
                             SOURCE_TRIAL_TAG, SOURCE_URI_TAG, TRIAL_TAG)
PAPER_FAMILIES = ("identityformer", "randformer", "poolformerv2", "convformer", "caformer")


@dataclasses.dataclass(frozen=True)
class RetrainSource:
    arch_yaml: str              # text of the architecture
    run_id: str                 # the trial run it came from
    trial_id: str
    family: str
    sweep: str
    tracking_uri: str           # the store holding the trial run
    data: dict[str, Any]        # the sweep's DataConfig fields
    recipe: dict[str, Any]      # the sweep's resolved recipe
    recipe_name: str | None     # "small" / "paper" (the sweep's base recipe)


def load_source(source: str, tracking_uri: str | None = None) -> RetrainSource:
    """An export folder or a trial run id -> what to retrain, from which data and recipe."""
    folder = Path(source)
    if folder.is_dir():
        meta_path, arch_path = folder / "export.json", folder / "arch.yaml"
        if not meta_path.is_file() or not arch_path.is_file():
            raise MfsearchError(f"{folder} is not an export folder (no export.json and arch.yaml; "
                                "make one with `mfsearch export`)")
        meta = json.loads(meta_path.read_text())
        return RetrainSource(arch_path.read_text(), meta["run_id"], meta["trial_id"], meta["family"], meta["sweep"],
                             meta["tracking_uri"], meta.get("data") or {}, meta.get("recipe") or {},
                             meta.get("recipe_name"))
    if not re.fullmatch(r"[0-9a-f]{32}", source):
        raise MfsearchError(f"{source!r} is neither an export folder nor an MLflow run id")
    return _from_run(source, tracking_uri)


def _from_run(run_id: str, tracking_uri: str | None) -> RetrainSource:
    import yaml

    store = open_store(tracking_uri)
    run = store.run(run_id)
    if run is None:
        raise MfsearchError(f"no run {run_id} in {store.uri}")
    if TRIAL_TAG not in run.tags or PARENT_TAG not in run.tags:
        raise MfsearchError(f"run {run_id} is not a sweep trial (no {TRIAL_TAG} tag)")
    parent_id = run.tags[PARENT_TAG]
    arch = store.artifact_text(run_id, "arch.yaml")
    resolved = store.artifact_text(parent_id, "resolved.yaml")
    parent = store.run(parent_id)
    if arch is None or resolved is None or parent is None:
        raise MfsearchError(f"run {run_id}: cannot read its arch.yaml or its sweep's resolved.yaml")
    resolved = yaml.safe_load(resolved) or {}
    experiment = store.experiment_by_id(run.experiment_id).name
    return RetrainSource(arch, run_id, run.tags[TRIAL_TAG], run.tags.get(FAMILY_TAG, "custom"), experiment,
                         store.uri, resolved.get("data") or {}, resolved.get("recipe") or {},
                         parent.params.get("train.recipe"))


def build_recipe(src: RetrainSource, recipe: str | None, epochs: int | None, overrides: Mapping[str, Any]):
    """A named recipe (``--recipe``), or the sweep's own with the base recipe's epoch budget."""
    from ..schema import parse_dataclass
    from ..training.recipes import TrainConfig, resolve_recipe

    preset = f"{src.family}_" if src.family in PAPER_FAMILIES else None  # `paper` picks the family's optimizer
    sets = dict(overrides)
    if recipe:
        if epochs is not None:
            sets["epochs"] = epochs
        return resolve_recipe(recipe, preset, sets)
    if not src.recipe:
        raise ConfigError("--recipe", f"the source of {src.run_id} records no recipe; name one (small or paper)")
    raw = json.loads(json.dumps(src.recipe))  # a deep copy
    raw["epochs"] = epochs if epochs is not None else resolve_recipe(src.recipe_name or "small", preset).epochs
    for key, value in sets.items():
        node, parts = raw, key.split(".")
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or parts[-1] not in node:
            raise ConfigError(key, "unknown recipe field")
        node[parts[-1]] = value
    return parse_dataclass(TrainConfig, raw, "recipe")


def build_data(src: RetrainSource, full_train: bool, overrides: Mapping[str, Any]):
    from ..data import DataConfig
    from ..schema import parse_dataclass

    raw = {**src.data, **overrides}
    if full_train:
        raw["train_on_val"] = True
    return parse_dataclass(DataConfig, raw, "data")


def retrain(source: str, *, epochs: int | None = None, recipe: str | None = None, full_train: bool = False,
            tracking_uri: str | None = None, experiment: str | None = None, sets: Mapping[str, Any] | None = None,
            progress: bool = True):
    """Retrain ``source``; returns ``mfsearch.training.run.TrainResult`` (``metrics['test/acc1']``)."""
    import warnings

    from ..training.run import train

    # Lightning warns that the (intentionally) empty validation loader of --full-train is empty.
    warnings.filterwarnings("ignore", message=".*Total length of .* across ranks is zero.*")
    sets = dict(sets or {})
    data_sets = {k[len("data."):]: v for k, v in sets.items() if k.startswith("data.")}
    recipe_sets = {k: v for k, v in sets.items() if not k.startswith("data.")}
    if epochs is not None and epochs < 1:
        raise ConfigError("--epochs", f"must be at least 1, got {epochs}")
    src = load_source(source, tracking_uri)
    train_cfg = build_recipe(src, recipe, epochs, recipe_sets)
    data = build_data(src, full_train, data_sets)
    uri = resolve_tracking_uri(tracking_uri) if tracking_uri else _local_store(src.tracking_uri)
    experiment = experiment or f"{src.sweep}-retrain"
    if uri == src.tracking_uri:
        _create_beside_sweep(uri, experiment, src.sweep)
    with tempfile.TemporaryDirectory() as tmp:
        arch_path = Path(tmp) / "arch.yaml"
        arch_path.write_text(src.arch_yaml)
        tags = {KIND_TAG: "retrain", SOURCE_TAG: src.run_id, SOURCE_TRIAL_TAG: src.trial_id,
                SOURCE_SWEEP_TAG: src.sweep, SOURCE_URI_TAG: src.tracking_uri,
                FAMILY_TAG: src.family, FULL_TRAIN_TAG: str(full_train).lower(),
                NOTE_TAG: f"Retrained from trial {src.trial_id} (run {src.run_id}) of sweep {src.sweep}."}
        return train(str(arch_path), data, train_cfg, tracking_uri=uri, experiment=experiment,
                     run_name=f"retrain-{src.family.replace(':', '-')}-{src.trial_id}", tags=tags, progress=progress,
                     extra_params={"source_run_id": src.run_id, "full_train": full_train})


def _create_beside_sweep(uri: str, experiment: str, sweep: str) -> None:
    """Create the retrain experiment with its artifacts next to the sweep's (MLflow's default would
    be ./mlruns under whatever folder the command runs in, far from the store it logs to)."""
    store = open_store(uri)
    if store.experiment(experiment) is not None:
        return
    source = store.experiment(sweep)
    location = source.artifact_location if source is not None else ""
    if location.startswith("file://"):
        location = location[len("file://"):]
    if location.startswith("/"):  # a local folder: a sibling of the sweep's experiment folder
        store.ensure_experiment(experiment, artifact_location=str(Path(location).parent / experiment))


def _local_store(uri: str) -> str:
    """The sweep's store when it is a SQLite file on this machine, else the default local store.
    A server URI from a source is not trusted (see the module docstring): say so."""
    path = sqlite_path(uri)
    if path is not None and path.is_file():
        return uri
    default = resolve_tracking_uri(None)
    if path is None:
        print(f"retrain: not logging to the source's tracking server {uri} (pass --tracking-uri {uri} to log there); "
              f"logging to {default}", flush=True)
    return default
