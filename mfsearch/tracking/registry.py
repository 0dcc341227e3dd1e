"""Put an exported model in MLflow's model registry, as a version of a registered model.

The model is saved in MLflow's ``pt2`` format (a ``torch.export`` program that loads without
unpickling code), logged under ``model/`` of the trial run it came from (so the registry's lineage
points at the run that measured it) and registered from there. Everything goes through the client
API with explicit URIs: no fluent "active run", no process-wide tracking or registry URI, so
registering leaves the caller's MLflow settings (and its subprocesses' environment) as they were.
Load it with ``mlflow.pytorch.load_model("models:/NAME/VERSION")`` (registry URI set to the store).
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Mapping

from ..errors import MfsearchError
from .store import Store


def register_model(model, example_input, name: str, tracking_uri: str, run_id: str,
                   tags: Mapping[str, str]) -> str:
    """Log ``model`` to run ``run_id`` and register it as a new version of ``name``; returns the version.
    ``example_input`` (a numpy array) fixes the signature; its batch axis stays dynamic."""
    import mlflow.pytorch
    import torch

    store = Store.open(tracking_uri)
    run = store.run(run_id)
    if run is None:
        raise MfsearchError(f"--register {name}: no run {run_id} in {tracking_uri}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "model"
            with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                mlflow.pytorch.save_model(model.eval(), str(folder), input_example=example_input,
                                          pip_requirements=["mfsearch", "torch"],
                                          **_pt2_if_supported(mlflow.pytorch.save_model))
            store.log_artifacts(run_id, folder, "model")
        return store.register_version(name, run_id, "model", tags)
    except MfsearchError:
        raise
    except Exception as err:
        raise MfsearchError(f"--register {name}: MLflow could not register the model: {type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else ''}") from err


def _pt2_if_supported(save_model: Callable) -> dict:
    """MLflow >= 3.x's safe ``pt2`` format where it exists; older 3.x pickles (its only format)."""
    import inspect
    return {"serialization_format": "pt2"} if "serialization_format" in inspect.signature(save_model).parameters else {}
