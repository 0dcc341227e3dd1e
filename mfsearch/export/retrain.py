"""`mfsearch retrain`: train a chosen architecture again, from scratch, at a full budget - the step
after a cheap search. Evaluates on the test split, which the search never looked at, and logs to
MLflow with tags that point at the trial it came from.

The source is an export folder (its ``export.json``) or a trial's run id. By default the run uses
the sweep's data and recipe, with the recipe's own epoch budget instead of the search's short one
(``small``: 30, ``paper``: 300), and logs into the sweep's MLflow store when that is reachable.

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

from ..analysis.sweep_data import FAMILY_TAG, PARENT_TAG, TRIAL_TAG, open_client
from ..errors import ConfigError, MfsearchError
from ..tracking import resolve_tracking_uri

SOURCE_RUN_TAG = "mfsearch.source_run_id"
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
    from mlflow.exceptions import MlflowException

    uri, client = open_client(tracking_uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        run = None
    if run is None or run.info.lifecycle_stage != "active":
        raise MfsearchError(f"no run {run_id} in {uri}")
    if TRIAL_TAG not in run.data.tags or PARENT_TAG not in run.data.tags:
        raise MfsearchError(f"run {run_id} is not a sweep trial (no {TRIAL_TAG} tag)")
    parent_id = run.data.tags[PARENT_TAG]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            arch = Path(client.download_artifacts(run_id, "arch.yaml", tmp)).read_text()
            resolved = yaml.safe_load(Path(client.download_artifacts(parent_id, "resolved.yaml", tmp)).read_text())
        except (MlflowException, OSError) as err:
            raise MfsearchError(f"run {run_id}: cannot read arch.yaml or the sweep's resolved.yaml: {err}") from err
    parent = client.get_run(parent_id)
    experiment = client.get_experiment(run.info.experiment_id).name
    return RetrainSource(arch, run_id, run.data.tags[TRIAL_TAG], run.data.tags.get(FAMILY_TAG, "custom"), experiment,
                         uri, resolved.get("data") or {}, resolved.get("recipe") or {},
                         parent.data.params.get("train.recipe"))


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
    uri = tracking_uri or _reachable(src.tracking_uri) or resolve_tracking_uri(None)
    experiment = experiment or f"{src.sweep}-retrain"
    if uri == src.tracking_uri:
        _create_beside_sweep(uri, experiment, src.sweep)
    with tempfile.TemporaryDirectory() as tmp:
        arch_path = Path(tmp) / "arch.yaml"
        arch_path.write_text(src.arch_yaml)
        tags = {"mfsearch.kind": "retrain", SOURCE_RUN_TAG: src.run_id, "mfsearch.source_trial_id": src.trial_id,
                "mfsearch.source_sweep": src.sweep, "mfsearch.source_tracking_uri": src.tracking_uri,
                FAMILY_TAG: src.family, "mfsearch.full_train": str(full_train).lower(),
                "mlflow.note.content": f"Retrained from trial {src.trial_id} (run {src.run_id}) of sweep {src.sweep}."}
        return train(str(arch_path), data, train_cfg, tracking_uri=uri, experiment=experiment,
                     run_name=f"retrain-{src.family.replace(':', '-')}-{src.trial_id}", tags=tags, progress=progress,
                     extra_params={"source_run_id": src.run_id, "full_train": full_train})


def _create_beside_sweep(uri: str, experiment: str, sweep: str) -> None:
    """Create the retrain experiment with its artifacts next to the sweep's (MLflow's default would
    be ./mlruns under whatever folder the command runs in, far from the store it logs to)."""
    _, client = open_client(uri)
    if client.get_experiment_by_name(experiment) is not None:
        return
    source = client.get_experiment_by_name(sweep)
    location = source.artifact_location if source is not None else ""
    if location.startswith("file://"):
        location = location[len("file://"):]
    if location.startswith("/"):  # a local folder: a sibling of the sweep's experiment folder
        client.create_experiment(experiment, artifact_location=str(Path(location).parent / experiment))


def _reachable(uri: str) -> str | None:
    """The sweep's store when it is still there (a SQLite file that exists, or a server URI)."""
    if uri.startswith("sqlite:///"):
        return uri if Path(uri[len("sqlite:///"):]).is_file() else None
    return uri
