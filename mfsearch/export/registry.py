"""Put an exported model in MLflow's model registry, as a version of a registered model.

The model is logged to the trial run it came from (so the registry's lineage points at the run that
measured it), in MLflow's ``pt2`` format: a ``torch.export`` program that loads without unpickling
code (``mlflow.pytorch.load_model("models:/NAME/VERSION")``). The fluent MLflow API needed for
that works on global state; it is set and restored here, in this one function.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings

import torch
from torch import nn

from ..errors import MfsearchError
from .formats import example_input


def register_model(model: nn.Module, img_size: int, name: str, tracking_uri: str, run_id: str,
                   tags: dict[str, str]) -> str:
    """Log ``model`` to run ``run_id`` and register it as a new version of ``name``; returns the version."""
    import mlflow
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    try:
        _point_fluent_api_at(tracking_uri)
        example = example_input(img_size, 2).numpy()
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                mlflow.start_run(run_id=run_id):
            warnings.simplefilter("ignore")
            info = mlflow.pytorch.log_model(model.eval(), name="model", registered_model_name=name,
                                            input_example=example, pip_requirements=["mfsearch", "torch"],
                                            **_pt2_if_supported(mlflow.pytorch.log_model))
        version = str(info.registered_model_version)
        client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        return version
    except MfsearchError:
        raise
    except Exception as err:
        raise MfsearchError(f"--register {name}: MLflow could not register the model: {type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else ''}") from err
    finally:
        _restore_fluent_api()


def _pt2_if_supported(log_model) -> dict:
    """MLflow >= 3.x's safe ``pt2`` format where it exists; older 3.x pickles (its only format)."""
    import inspect
    return {"serialization_format": "pt2"} if "serialization_format" in inspect.signature(log_model).parameters else {}


_SAVED: list[tuple] = []
_URI_ENV_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def _point_fluent_api_at(uri: str) -> None:
    """Set the fluent API's tracking and registry URIs, remembering the caller's settings.

    ``mlflow.get_tracking_uri()`` answers a default when nothing was set; setting that default back
    would pin it (and a later ``MlflowClient(uri)`` would read the registry of ./mlflow.db). So the
    module globals behind ``set_tracking_uri``/``set_registry_uri`` are saved and restored as they were.
    Those setters also export ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI`` into ``os.environ`` (for
    subprocesses to inherit); left there, every later subprocess of the caller, a sweep's Ray workers
    included, would write to this store. The environment is saved and restored with them.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    _SAVED.append((getattr(tracking_utils, "_tracking_uri", None), getattr(registry_utils, "_registry_uri", None),
                   {var: os.environ.get(var) for var in _URI_ENV_VARS}))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def _restore_fluent_api() -> None:
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    if _SAVED:
        tracking_utils._tracking_uri, registry_utils._registry_uri, env = _SAVED.pop()
        for var, value in env.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
