#!/bin/sh
# Entrypoint of the PostgreSQL image: on an empty data volume, create the cluster and MLflow's
# role and databases; then run the server in the foreground.
#   POSTGRES_PASSWORD   required: the password of the `mlflow` role (MLflow's server logs in with it)
#   POSTGRES_USER (mlflow), POSTGRES_DB (mlflow), POSTGRES_AUTH_DB (mlflow_auth), POSTGRES_PORT (5432)
#   POSTGRES_LISTEN     the addresses to listen on: `*` on a bridge network (nothing is published),
#                       127.0.0.1 under host networking
set -eu

: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set (write it in docker/.env; see docker/.env.example)}"
user=${POSTGRES_USER:-mlflow}
db=${POSTGRES_DB:-mlflow}
auth_db=${POSTGRES_AUTH_DB:-mlflow_auth}
port=${POSTGRES_PORT:-5432}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    # The superuser `postgres` has no password and may only log in over the container's own Unix
    # socket; over TCP only password (SCRAM) logins work, i.e. the `mlflow` role's.
    initdb -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 >/dev/null
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -k /run/postgresql -p $port" start >/dev/null
    # psql reads the password from the environment (\getenv, psql >= 15): it never appears on a
    # command line, and :'pw' quotes it whatever characters it holds.
    psql -v ON_ERROR_STOP=1 -q -h /run/postgresql -p "$port" -U postgres -d postgres -v user="$user" <<'SQL'
\getenv pw POSTGRES_PASSWORD
CREATE ROLE :"user" LOGIN PASSWORD :'pw';
SQL
    # Two databases: MLflow's run store and its auth app's user store keep separate schemas.
    createdb -h /run/postgresql -p "$port" -U postgres -O "$user" "$db"
    createdb -h /run/postgresql -p "$port" -U postgres -O "$user" "$auth_db"
    pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
    echo "postgres-server: initialised $PGDATA (role $user, databases $db and $auth_db)"
fi

exec postgres -D "$PGDATA" -p "$port" -k /run/postgresql -c listen_addresses="${POSTGRES_LISTEN:-*}"
