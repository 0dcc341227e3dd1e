"""MLflow tracking: the only package that talks to MLflow (``store.Store`` is the door)."""
from .mlflow_store import MlflowRun, arch_params, flatten
from .store import ExperimentView, RunView, Store, check_reachable, default_tracking_uri, resolve_tracking_uri

__all__ = ["ExperimentView", "MlflowRun", "RunView", "Store", "arch_params", "check_reachable",
           "default_tracking_uri", "flatten", "resolve_tracking_uri"]
