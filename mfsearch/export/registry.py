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

    previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    try:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        example = example_input(img_size, 2).numpy()
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                mlflow.start_run(run_id=run_id):
            warnings.simplefilter("ignore")
            info = mlflow.pytorch.log_model(model.eval(), name="model", registered_model_name=name,
                                            serialization_format="pt2", input_example=example,
                                            pip_requirements=["mfsearch", "torch"])
        version = str(info.registered_model_version)
        client = MlflowClient(tracking_uri)
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        return version
    except MfsearchError:
        raise
    except Exception as err:
        raise MfsearchError(f"--register {name}: MLflow could not register the model: {type(err).__name__}: "
                            f"{str(err).splitlines()[0] if str(err) else ''}") from err
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
