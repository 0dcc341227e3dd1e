"""Shared fixtures. Real data lives in ../shared/data (read-only); tests that need it skip without it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CIFAR10 = Path(os.environ.get("MFSEARCH_TEST_CIFAR10", ROOT.parent / "shared" / "data" / "cifar10"))

# Never reach for the network from tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def cifar10_root() -> Path:
    if not (CIFAR10 / "train").is_dir():
        pytest.skip(f"real CIFAR-10 ImageFolder tree not found at {CIFAR10} "
                    "(set MFSEARCH_TEST_CIFAR10 to its location)")
    return CIFAR10
