"""One real smoke sweep per test session, shared by the after-search tests (export, dashboard).

`mfsearch run search_spaces/smoke.yaml` through the real CLI, real Ray, real MLflow, real CIFAR-10.
The first module that needs it runs it in the session's base temp folder; the others find it done.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "search_spaces" / "smoke.yaml"


@dataclasses.dataclass(frozen=True)
class SmokeSweep:
    workdir: Path
    tracking_uri: str
    name: str = "smoke"


def cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mfsearch.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def shared_smoke_sweep(tmp_path_factory, cifar10_root: Path) -> SmokeSweep:
    workdir = tmp_path_factory.getbasetemp() / "shared-smoke-sweep"
    done = workdir / "DONE"
    if not done.exists():
        workdir.mkdir(exist_ok=True)
        out = cli("run", str(SMOKE), "--data-root", str(cifar10_root), cwd=workdir)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
        done.write_text(out.stdout)
    return SmokeSweep(workdir, f"sqlite:///{workdir / 'mlflow.db'}")
