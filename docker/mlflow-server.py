#!/usr/bin/env python3
"""Entrypoint of the MLflow image: the tracking server on PostgreSQL, basic auth on, artifacts proxied.

Secrets arrive through the environment (compose reads them from docker/.env, which the user writes
and git ignores) and go on no command line, where `ps` would show them:
  POSTGRES_PASSWORD            the `mlflow` database role's password (set on the postgres service too)
  MLFLOW_AUTH_ADMIN_PASSWORD   the password of MLflow's admin user, created on the first start
Others: MLFLOW_FLASK_SERVER_SECRET_KEY (random per start unless set), POSTGRES_HOST (postgres), POSTGRES_PORT (5432), POSTGRES_USER (mlflow), MLFLOW_HOST
(default 127.0.0.1, so an image run with host networking listens on loopback only; compose.yaml sets
0.0.0.0 inside the bridge network, where the published port, 127.0.0.1 by default, decides who can
reach it), MLFLOW_PORT (5000), MLFLOW_WORKERS (2), MLFLOW_AUTH_ADMIN_USERNAME (admin).
"""
from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import quote

DEFAULT_HOST = "127.0.0.1"   # all interfaces only when the caller says so (compose.yaml's bridge network)


def require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        sys.exit(f"mlflow-server: {name} is not set (write it in docker/.env; see docker/.env.example)")
    return value


def database_uri(database: str) -> str:
    user = quote(os.environ.get("POSTGRES_USER", "mlflow"), safe="")
    password = quote(require("POSTGRES_PASSWORD"), safe="")
    host = os.environ.get("POSTGRES_HOST", "postgres")
    port = os.environ.get("POSTGRES_PORT", "5432")
    # SQLAlchemy 2's plain `postgresql://` means psycopg2; the image has psycopg 3.
    return f"postgresql+psycopg://{user}:{password}@{host}:{port}/{database}"


def wait_for_database(uri: str, timeout: float = 120.0) -> None:
    """compose starts us once PostgreSQL answers pg_isready; under plain `docker run` it may not yet."""
    import psycopg

    dsn = uri.replace("postgresql+psycopg://", "postgresql://", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(dsn, connect_timeout=5).close()
            return
        except psycopg.OperationalError as err:
            if time.monotonic() > deadline:
                sys.exit(f"mlflow-server: PostgreSQL did not answer in {timeout:.0f} s: {str(err).strip()[:300]}")
            time.sleep(2)


def write_auth_config(auth_uri: str) -> Path:
    """MLflow's basic-auth app reads its user store's URI from an ini file only; the URI holds the
    database password, so the file is private to this user and lives outside any volume."""
    path = Path.home() / "basic_auth.ini"
    # configparser interpolates '%': the URL-quoted password must have it doubled.
    text = "\n".join([
        "[mlflow]",
        # Users the admin adds see nothing until granted: safer than MLflow's default of READ.
        "default_permission = NO_PERMISSIONS",
        f"database_uri = {auth_uri.replace('%', '%%')}",
        f"admin_username = {os.environ.get('MLFLOW_AUTH_ADMIN_USERNAME', 'admin')}",
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
        "",
    ])
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def health() -> None:
    """The image's HEALTHCHECK: liveness only (/health answers without credentials)."""
    import urllib.request

    host = os.environ.get("MLFLOW_HOST", DEFAULT_HOST)
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    urllib.request.urlopen(f"http://{host}:{os.environ.get('MLFLOW_PORT', '5000')}/health", timeout=4).close()


def main() -> None:
    if sys.argv[1:] == ["--health"]:
        health()
        return
    require("MLFLOW_AUTH_ADMIN_PASSWORD")   # read by MLflow itself when it creates the admin user
    backend = database_uri(os.environ.get("POSTGRES_DB", "mlflow"))
    auth = database_uri(os.environ.get("POSTGRES_AUTH_DB", "mlflow_auth"))
    wait_for_database(backend)
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(auth))
    # The auth app signs its CSRF tokens with this key and refuses to start without one. A fresh
    # random key per start is shared by this start's workers; a restart only invalidates forms
    # open in browsers. Set it (docker/.env) to keep it across restarts or servers.
    if not os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
        os.environ["MLFLOW_FLASK_SERVER_SECRET_KEY"] = secrets.token_hex(32)
    os.environ["MLFLOW_BACKEND_STORE_URI"] = backend      # read by `mlflow server`, off the command line
    argv = ["mlflow", "server", "--app-name", "basic-auth",
            "--host", os.environ.get("MLFLOW_HOST", DEFAULT_HOST),
            "--port", os.environ.get("MLFLOW_PORT", "5000"),
            "--workers", os.environ.get("MLFLOW_WORKERS", "2"),
            # The server streams artifacts to and from this folder (a volume): clients need no
            # storage credentials and no shared filesystem, and the server's auth covers them.
            "--serve-artifacts", "--artifacts-destination", os.environ.get("MLFLOW_ARTIFACTS", "/mlflow/artifacts")]
    sys.stdout.flush()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
