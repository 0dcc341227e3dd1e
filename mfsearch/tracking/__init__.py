"""MLflow tracking: the only package that talks to MLflow."""
from .mlflow_store import MlflowRun, arch_params, default_tracking_uri, resolve_tracking_uri

__all__ = ["MlflowRun", "arch_params", "default_tracking_uri", "resolve_tracking_uri"]
