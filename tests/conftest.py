"""Shared fixtures. Real data lives in ../shared/data (read-only); tests that need it skip without it."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CIFAR10 = Path(os.environ.get("MFSEARCH_TEST_CIFAR10", ROOT.parent / "shared" / "data" / "cifar10"))

# Never reach for the network from tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Sweeps sign their resume state with a per-user key (~/.config/mfsearch/state.key): tests use their own.
os.environ.setdefault("MFSEARCH_STATE_KEY_FILE", os.path.join(tempfile.mkdtemp(prefix="mfsearch-key-"), "state.key"))

# Tests choose their MLflow store themselves (most check the default, ./mlflow.db); a user's
# MLFLOW_TRACKING_URI must not send test runs to their server, nor reach the subprocesses tests start.
MLFLOW_URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
for _var in MLFLOW_URI_VARS:
    os.environ.pop(_var, None)


@pytest.fixture(autouse=True)
def no_leaked_mlflow_uri():
    """Fail the test that leaves an MLflow URI in os.environ (MLflow's fluent setters export one),
    which would silently redirect every later test's runs and subprocesses to its store."""
    yield
    leaked = {var: os.environ.pop(var) for var in MLFLOW_URI_VARS if var in os.environ}
    if leaked:
        pytest.fail(f"the test left {leaked} in os.environ")


@pytest.fixture
def cifar10_root() -> Path:
    if not (CIFAR10 / "train").is_dir():
        pytest.skip(f"real CIFAR-10 ImageFolder tree not found at {CIFAR10} "
                    "(set MFSEARCH_TEST_CIFAR10 to its location)")
    return CIFAR10
