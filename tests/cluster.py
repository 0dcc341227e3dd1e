"""A real cluster on this machine, every part a separate process on loopback:

- PostgreSQL (its server binaries; ``initdb`` into a temp folder, a free port on 127.0.0.1);
- an MLflow tracking server on that PostgreSQL, artifacts proxied by the server
  (``--serve-artifacts --artifacts-destination``);
- a Ray head and a second Ray node joining it (``ray start --block``, token authentication on,
  one CPU each, so two concurrent trials must land on different nodes);
- a shared storage folder for Tune.

Every process runs in its own session, so stopping or killing one (``os.killpg`` on its process
group: by id, never by name) takes its children with it — a Ray node's raylet and its workers.
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

PG_BIN = Path(os.environ.get("MFSEARCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
ROOT = Path(__file__).resolve().parents[1]


def missing_parts() -> str | None:
    """Why the cluster cannot run here (None when it can)."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL server binaries not found in {PG_BIN} (set MFSEARCH_PG_BIN)"
    if shutil.which("ray") is None and not (Path(sys.executable).parent / "ray").exists():
        return "the `ray` command is not installed"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg (the PostgreSQL driver MLflow's server needs) is not installed"
    if os.geteuid() == 0:
        try:
            import pwd
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a `postgres` user to run PostgreSQL as"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, what: str, timeout: float = 120.0, proc: "Proc | None" = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{what}: {proc.name} exited ({proc.popen.returncode}): {proc.tail()}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 — not up yet
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s" + (f": {proc.tail()}" if proc else ""))


@dataclasses.dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def tail(self, n: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)  # its own session: the group id is its pid
        except ProcessLookupError:
            pass

    def kill9(self) -> None:
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if not self.alive():
            self.signal_group(signal.SIGKILL)  # leftovers of a group whose leader already exited
            return
        self.signal_group(sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.popen.wait(timeout=30)
        self.signal_group(signal.SIGKILL)


class LocalCluster:
    def __init__(self, root: Path):
        # Short and world-traversable: Ray's socket paths are length-limited, and PostgreSQL runs
        # as its own user when we are root.
        self.base = Path(tempfile.mkdtemp(prefix="mfc-", dir="/tmp"))
        self.base.chmod(0o755)
        self.root = root
        self.storage = root / "shared"
        self.storage.mkdir(parents=True, exist_ok=True)
        self.artifacts = root / "artifacts"
        self.procs: dict[str, Proc] = {}
        self.pg_port = free_port()
        self.mlflow_port = free_port()
        self.ray_port = free_port()
        self.token = secrets.token_hex(16)
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
                    "RAY_TMPDIR": str(self.base / "ray"), "RAY_USAGE_STATS_ENABLED": "0"}
        self.env.pop("RAY_ADDRESS", None)
        self.env.pop("MLFLOW_TRACKING_URI", None)

    # -- addresses --------------------------------------------------------------------------------
    @property
    def ray_address(self) -> str:
        return f"127.0.0.1:{self.ray_port}"

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def pg_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/mlflow"

    # -- processes --------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], env: dict | None = None) -> Proc:
        log = self.root / f"{name}.log"
        handle = open(log, "ab")
        popen = subprocess.Popen([str(a) for a in argv], stdout=handle, stderr=subprocess.STDOUT,
                                 env=env or self.env, start_new_session=True, cwd=self.root)
        handle.close()
        self.procs[name] = Proc(name, popen, log)
        return self.procs[name]

    def _as_postgres(self, argv: list) -> list:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def start_postgres(self) -> None:
        data = self.base / "pg"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        subprocess.run(self._as_postgres([PG_BIN / "initdb", "-D", data, "-A", "trust", "-U", "postgres",
                                          "--no-sync"]), check=True, capture_output=True)
        self.pg_data = data
        self.start_postgres_server()
        subprocess.run([PG_BIN / "createdb", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "mlflow"],
                       check=True, capture_output=True)

    def start_postgres_server(self) -> None:
        proc = self._spawn("postgres", self._as_postgres([
            PG_BIN / "postgres", "-D", self.pg_data, "-p", self.pg_port, "-k", self.pg_data,
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]))
        wait_for(lambda: subprocess.run([PG_BIN / "pg_isready", "-h", "127.0.0.1", "-p", str(self.pg_port)],
                                        capture_output=True).returncode == 0, "PostgreSQL", proc=proc)

    def start_mlflow(self) -> None:
        proc = self._spawn("mlflow", [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                                      "--port", self.mlflow_port, "--workers", "1",
                                      "--backend-store-uri", f"postgresql+psycopg://postgres@127.0.0.1:{self.pg_port}/mlflow",
                                      "--artifacts-destination", self.artifacts, "--serve-artifacts"])
        wait_for(lambda: urllib.request.urlopen(f"{self.tracking_uri}/health", timeout=2).status == 200,
                 "MLflow server", timeout=180, proc=proc)

    def start_ray(self) -> None:
        ray = Path(sys.executable).parent / "ray"
        common = ["--num-cpus", "1", "--num-gpus", "0", "--node-ip-address", "127.0.0.1", "--block",
                  "--disable-usage-stats"]
        head = self._spawn("ray-head", [ray, "start", "--head", "--port", self.ray_port,
                                        "--include-dashboard", "false", *common])
        wait_for(lambda: socket.create_connection(("127.0.0.1", self.ray_port), timeout=1).close() is None,
                 "Ray head", proc=head)
        self.start_ray_worker()
        self.wait_for_nodes(2)

    def start_ray_worker(self) -> None:
        ray = Path(sys.executable).parent / "ray"
        self._spawn("ray-worker", [ray, "start", "--address", self.ray_address, "--num-cpus", "1", "--num-gpus",
                                   "0", "--node-ip-address", "127.0.0.1", "--block", "--disable-usage-stats"])

    def alive_nodes(self) -> int:
        code = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
                "print(sum(1 for n in ray.nodes() if n['Alive']))")
        out = subprocess.run([sys.executable, "-c", code, self.ray_address], capture_output=True, text=True,
                             env=self.env, timeout=120)
        return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else -1

    def wait_for_nodes(self, n: int, timeout: float = 120.0) -> None:
        wait_for(lambda: self.alive_nodes() == n, f"{n} Ray nodes", timeout=timeout)

    def start(self) -> "LocalCluster":
        try:
            self.start_postgres()
            self.start_mlflow()
            self.start_ray()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for name in ("ray-worker", "ray-head", "mlflow"):
            if name in self.procs:
                self.procs[name].stop()
        if "postgres" in self.procs:
            self.procs["postgres"].stop(signal.SIGINT)  # PostgreSQL's fast shutdown
        shutil.rmtree(self.base, ignore_errors=True)

    # -- the driver -------------------------------------------------------------------------------
    def mfsearch(self, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mfsearch.cli.main", *args], cwd=self.root, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def sweep_args(self, space: Path, data_root: Path, *extra: str) -> list[str]:
        return ["run", str(space), "--address", self.ray_address, "--tracking-uri", self.tracking_uri,
                "--storage-path", str(self.storage), "--data-root", str(data_root), *extra]

    def spawn_driver(self, args: list[str]) -> Proc:
        return self._spawn("driver", [sys.executable, "-m", "mfsearch.cli.main", *args])

    # -- what PostgreSQL holds --------------------------------------------------------------------
    def query(self, sql: str, *params) -> list[tuple]:
        import psycopg
        with psycopg.connect(self.pg_dsn) as conn:
            return conn.execute(sql, params).fetchall()

    def runs(self, experiment: str) -> list[dict]:
        """Every live run of ``experiment`` as PostgreSQL stores it, with its tags."""
        rows = self.query("select r.run_uuid, r.status, r.artifact_uri from runs r join experiments e "
                          "on r.experiment_id = e.experiment_id where e.name = %s and r.lifecycle_stage = 'active'",
                          experiment)
        out = []
        for run_id, status, artifact_uri in rows:
            tags = dict(self.query("select key, value from tags where run_uuid = %s", run_id))
            out.append({"run_id": run_id, "status": status, "artifact_uri": artifact_uri, "tags": tags})
        return out

    def metric_steps(self, run_id: str, key: str) -> list[int]:
        return sorted(s for (s,) in self.query("select step from metrics where run_uuid = %s and key = %s",
                                               run_id, key))


def dump(cluster: LocalCluster) -> str:
    """Every process's log tail, for a failing assertion's message."""
    return json.dumps({name: p.tail(1500) for name, p in cluster.procs.items()}, indent=1)
