"""Ray's doors: a local sweep's Ray refuses a client without its token; no --address means a new
local Ray (never a stale recorded cluster); an unreachable cluster fails in seconds with one line."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "search_spaces" / "smoke.yaml"

PROBE = """
import sys
from ray._raylet import GcsClient
try:
    keys = GcsClient(address=sys.argv[1]).internal_kv_keys(b"", None, timeout=10)
    print("ANSWERED", len(keys))
except Exception as err:
    print("REFUSED", type(err).__name__, str(err).splitlines()[0][:200])
"""


def probe_gcs(address: str, env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE, address], capture_output=True, text=True, env=env, timeout=120)
    return (out.stdout + out.stderr).strip()


def without_token(tmp_path: Path) -> dict:
    """A client environment with no Ray token anywhere (empty HOME, no RAY_AUTH_* variables)."""
    home = tmp_path / "stranger"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    return {**env, "HOME": str(home), "RAY_AUTH_MODE": "disabled"}


@pytest.mark.slow
def test_a_local_sweeps_ray_refuses_a_client_without_the_token(tmp_path, cifar10_root):
    # This sweep's own Ray session folder, to find its GCS port; short, for Ray's socket paths.
    ray_tmp = Path(tempfile.mkdtemp(prefix="mfs-ray-", dir="/tmp"))
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    env.pop("RAY_AUTH_MODE", None)  # mfsearch turns it on by itself
    sweep = subprocess.Popen([sys.executable, "-m", "mfsearch.cli.main", "run", str(SMOKE), "--data-root",
                              str(cifar10_root), "--storage-path", str(tmp_path / "runs"), "--set",
                              "search.num_samples=1", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port_file = None
        deadline = time.monotonic() + 180
        while port_file is None and time.monotonic() < deadline and sweep.poll() is None:
            found = list(ray_tmp.glob("ray/session_*/gcs_server_port_*"))
            port_file = found[0] if found and found[0].read_text().strip() else None
            time.sleep(0.5)
        if port_file is None:
            sweep.kill()
            pytest.fail(f"the sweep's Ray never wrote its GCS port: {sweep.communicate()[1][-3000:]}")
        address = f"127.0.0.1:{port_file.read_text().strip()}"
        refused = probe_gcs(address, without_token(tmp_path))
        answered = probe_gcs(address, {**os.environ, "RAY_AUTH_MODE": "token"})  # the user's own token
    finally:
        out, err = sweep.communicate(timeout=600)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert sweep.returncode == 0, err[-3000:]
    assert refused.startswith("REFUSED") and "InvalidAuthToken" in refused, refused
    assert answered.startswith("ANSWERED"), answered   # the same probe with the token: the door is a lock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_cluster_fails_in_seconds_with_one_line(tmp_path, cifar10_root):
    port = free_port()   # nothing listens there
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "mfsearch.cli.main", "run", str(SMOKE), "--data-root",
                          str(cifar10_root), "--address", f"127.0.0.1:{port}", "--storage-path",
                          str(tmp_path / "runs"), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"Ray cluster at 127.0.0.1:{port}" in lines[0] and "not reachable" in lines[0]
    assert "Traceback" not in out.stderr
    assert elapsed < 60   # was: minutes of GCS reconnect warnings
    assert not (tmp_path / "m.db").exists() and not (tmp_path / "runs").exists()   # nothing written


def test_no_address_never_joins_a_recorded_cluster(tmp_path, monkeypatch):
    """`ray start` records its address; RAY_ADDRESS may name one. Without --address, neither is joined:
    a stale record (nothing listening) would otherwise hang the sweep for minutes."""
    import ray

    from mfsearch.search.ray_cluster import start_ray

    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{free_port()}")   # stale: nothing there
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    started = time.monotonic()
    try:
        start_ray(None, num_cpus=1)
        assert ray.is_initialized()
        assert os.environ["RAY_AUTH_MODE"] == "token"
        assert ray.get_runtime_context().gcs_address != os.environ["RAY_ADDRESS"]
    finally:
        ray.shutdown()
    assert time.monotonic() - started < 120


def test_address_auto_without_a_recorded_cluster_is_one_line(monkeypatch):
    from mfsearch.errors import MfsearchError
    from mfsearch.search import ray_cluster

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(ray_cluster, "RAY_CURRENT_CLUSTER", Path("/nonexistent/ray_current_cluster"))
    with pytest.raises(MfsearchError, match="--address auto: no running Ray cluster recorded"):
        ray_cluster.resolve_address("auto")
    with pytest.raises(MfsearchError, match="expected host:port"):
        ray_cluster.resolve_address("not-an-address")
