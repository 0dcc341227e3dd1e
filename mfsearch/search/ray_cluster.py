"""Start a local Ray or join a cluster, with its doors closed and a fast, one-line failure.

- **Local means local.** Without ``--address`` we start a new Ray for this process only
  (``ray.init(address="local")``). A bare ``ray.init()`` would join whatever cluster ``ray start``
  last recorded on the machine (``/tmp/ray/ray_current_cluster``, or ``RAY_ADDRESS``) and, when that
  cluster is gone, hang for minutes printing GCS connection warnings.
- **Token authentication on.** Ray 2.60's gRPC servers (GCS, raylets, workers) listen on every
  interface whatever node IP they are given, so loopback binding cannot close them; its token
  authentication can. ``RAY_AUTH_MODE=token`` is set for the local Ray we start and for joining a
  cluster (whose nodes must run with it too; README, "Closed doors"): a client without the token is
  refused by the GCS. The token is Ray's own file (``~/.ray/auth_token``, written by ``ray.init`` on
  first use, or ``RAY_AUTH_TOKEN``/``RAY_AUTH_TOKEN_PATH``). A user who sets ``RAY_AUTH_MODE=disabled``
  on purpose gets a warning, not a refusal. The dashboard (and its Jobs API) is never started.
- **A cluster that cannot be reached fails in seconds**, with one line naming the address, instead
  of Ray's minutes of reconnect attempts.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from ..errors import MfsearchError

AUTH_MODE_ENV = "RAY_AUTH_MODE"
REACH_TIMEOUT_S = 5.0
RAY_CURRENT_CLUSTER = Path("/tmp/ray/ray_current_cluster")   # where `ray start` records its address


def start_ray(address: str | None, num_cpus: int | None = None) -> None:
    """Start a local Ray (``address`` None) or join the cluster at ``address`` (``auto``, ``host:port``,
    ``ray://host:port``)."""
    import ray

    os.environ.setdefault("PL_DISABLE_FORK", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if ray.is_initialized():
        return
    _require_token_auth()
    common = dict(include_dashboard=False, log_to_driver=False, configure_logging=True, logging_level="ERROR")
    if address is None:
        ray.init(address="local", num_cpus=num_cpus, **common)
        return
    target = check_cluster(address)
    try:
        ray.init(address=address if address.startswith("ray://") else target, **common)
    except Exception as err:
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = (f"; join with the cluster's token: {AUTH_MODE_ENV}=token and RAY_AUTH_TOKEN (or ~/.ray/auth_token "
                f"as on the head node)") if "auth" in text.lower() else ""
        raise MfsearchError(f"Ray cluster at {address}: {text[:300]}{hint}") from None


def _require_token_auth() -> None:
    mode = os.environ.get(AUTH_MODE_ENV)
    if mode is None:
        os.environ[AUTH_MODE_ENV] = "token"
        # Ray's C++ config read the environment when `ray` was imported; refresh it the way Ray's
        # own token setup does, or this driver would talk to its token-checking GCS without one.
        from ray._raylet import Config
        Config.initialize("")
    elif mode.lower() != "token":
        print(f"mfsearch: warning: {AUTH_MODE_ENV}={mode}: Ray runs without token authentication; anyone who can "
              f"reach this machine's Ray ports can run code as you", file=sys.stderr, flush=True)


def check_cluster(address: str | None) -> str | None:
    """Before anything is written: the cluster at ``address`` answers (None: a local Ray, nothing to
    check). Returns its ``host:port``."""
    if address is None:
        return None
    target = resolve_address(address)
    check_reachable(target, address)
    return target


def resolve_address(address: str) -> str:
    """``host:port`` of the cluster's GCS (or Ray Client server for ``ray://``)."""
    if address == "auto":
        found = os.environ.get("RAY_ADDRESS") or (RAY_CURRENT_CLUSTER.read_text().strip()
                                                   if RAY_CURRENT_CLUSTER.is_file() else "")
        if not found or found == "auto":
            raise MfsearchError("--address auto: no running Ray cluster recorded on this machine "
                                f"(RAY_ADDRESS unset, no {RAY_CURRENT_CLUSTER}); start one with `ray start --head` "
                                "or omit --address to run locally")
        address = found
    host_port = address.split("://", 1)[-1].rstrip("/")
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise MfsearchError(f"--address {address!r}: expected host:port, ray://host:port or auto")
    return host_port


def check_reachable(host_port: str, shown: str, timeout: float = REACH_TIMEOUT_S) -> None:
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise MfsearchError(f"Ray cluster at {shown} ({host_port}) is not reachable ({reason}); start it "
                            f"(`ray start --head`), or omit --address to run a local Ray") from None
