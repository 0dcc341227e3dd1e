#!/bin/sh
# One Ray node of docker/compose.yaml in the foreground: `ray-node head` or `ray-node worker`.
#
# Settings come from the environment so that one compose file serves both a bridge network
# (node IPs and the head's name from Docker's DNS) and host networking (everything on 127.0.0.1):
#   RAY_AUTH_TOKEN        required: the cluster's shared secret (token authentication is forced on)
#   RAY_HEAD_ADDRESS      worker: host:port of the head's GCS (default ray-head:6379)
#   RAY_PORT              head: GCS port (default 6379)
#   RAY_NODE_IP           optional: --node-ip-address (127.0.0.1 under host networking)
#   RAY_NUM_CPUS / RAY_NUM_GPUS / RAY_OBJECT_STORE_BYTES   optional resource overrides
set -eu

role=${1:?usage: ray-node head|worker}

# Ray 2.60's gRPC servers listen on every interface whatever node IP they get, and a Ray worker
# runs any code a client sends it: without a token this would be remote code execution for
# anyone who reaches a port. mfsearch's driver always joins with RAY_AUTH_MODE=token too.
export RAY_AUTH_MODE=token
if [ -z "${RAY_AUTH_TOKEN:-}" ] && [ -z "${RAY_AUTH_TOKEN_PATH:-}" ]; then
    echo "ray-node: RAY_AUTH_TOKEN is not set; refusing to start a Ray node without token authentication" >&2
    exit 2
fi

set -- --block --disable-usage-stats
[ -n "${RAY_NODE_IP:-}" ] && set -- "$@" --node-ip-address "$RAY_NODE_IP"
[ -n "${RAY_NUM_CPUS:-}" ] && set -- "$@" --num-cpus "$RAY_NUM_CPUS"
[ -n "${RAY_NUM_GPUS:-}" ] && set -- "$@" --num-gpus "$RAY_NUM_GPUS"
# Docker's /dev/shm is what the compose file's shm_size gives; an object store larger than it
# would make Ray fall back to /tmp with a warning.
[ -n "${RAY_OBJECT_STORE_BYTES:-}" ] && set -- "$@" --object-store-memory "$RAY_OBJECT_STORE_BYTES"

case "$role" in
    head)
        # No dashboard: its Jobs API runs arbitrary code and has no authentication of its own.
        exec ray start --head --port "${RAY_PORT:-6379}" --include-dashboard=false "$@" ;;
    worker)
        exec ray start --address "${RAY_HEAD_ADDRESS:-ray-head:6379}" "$@" ;;
    *)
        echo "ray-node: unknown role '$role' (head or worker)" >&2
        exit 2 ;;
esac
