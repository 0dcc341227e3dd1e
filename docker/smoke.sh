#!/usr/bin/env bash
# End-to-end check of the containers: build the images, bring the compose stack up (PostgreSQL,
# MLflow, Ray head, CPU Ray worker), run search_spaces/smoke.yaml through it from the head
# container, check in MLflow's REST API (with basic auth) that every trial landed, check the
# doors that must stay shut, and tear everything down, volumes included, whatever happens.
# Too slow for CI (image builds): run by hand after changing docker/ or the dependencies.
#
#   docker/smoke.sh                                  # a Docker host with a bridge network
#   SMOKE_NETWORK=host docker/smoke.sh               # dockerd --bridge=none: host networking
#
# Environment (all optional):
#   DATA_DIR            folder holding cifar10/ (default $MFSEARCH_DATA_DIR, else ../shared/data)
#   SMOKE_NETWORK       bridge (default) or host (adds docker/compose.hostnet.yaml)
#   SMOKE_PROJECT       compose project name (default mfsearch-smoke: its own volumes, removed at the end)
#   SMOKE_EXPECT_TRIALS child runs the sweep must leave FINISHED (default 5: 3 samples + 2 baselines)
#   SMOKE_SKIP_BUILD=1  reuse the images of the last build
#   BASE_IMAGE, POSTGRES_BASE_IMAGE   base images (docker/debian-base.sh builds one offline)
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_TRUSTED_HOST, TORCH_INDEX_URL, TORCH_VERSION,
#   TORCHVISION_VERSION   passed to the builds when set (package mirrors, another torch build)
#   MLFLOW_PORT         default 5000; IMAGE_PREFIX  image names (default mfsearch)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
t0=$(date +%s)
log() { printf '[smoke %5ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
die() { log "FAILED: $*"; exit 1; }

network=${SMOKE_NETWORK:-bridge}
project=${SMOKE_PROJECT:-mfsearch-smoke}
expect=${SMOKE_EXPECT_TRIALS:-5}
export IMAGE_PREFIX=${IMAGE_PREFIX:-mfsearch}
export MLFLOW_PORT=${MLFLOW_PORT:-5000}
export DATA_DIR=${DATA_DIR:-${MFSEARCH_DATA_DIR:-$repo/../shared/data}}
DATA_DIR=$(cd "$DATA_DIR" 2>/dev/null && pwd) || die "DATA_DIR ($DATA_DIR) does not exist"
[ -d "$DATA_DIR/cifar10" ] || die "no cifar10/ in DATA_DIR ($DATA_DIR)"

# Fresh secrets for every run, in this process's environment only (they override docker/.env).
secret() { python3 -c 'import secrets; print(secrets.token_hex(24))'; }
RAY_AUTH_TOKEN=$(secret); POSTGRES_PASSWORD=$(secret); MLFLOW_AUTH_ADMIN_PASSWORD=$(secret)
export RAY_AUTH_TOKEN POSTGRES_PASSWORD MLFLOW_AUTH_ADMIN_PASSWORD MLFLOW_AUTH_ADMIN_USERNAME=admin

docker info >/dev/null 2>&1 || die "no Docker daemon answers (docker info)"
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
else
    die "neither 'docker compose' nor 'docker-compose' is installed"
fi
tmp=$(mktemp -d /tmp/mfsearch-smoke.XXXXXX)
files=(-f docker/compose.yaml)
dc() { "${compose[@]}" -p "$project" "${files[@]}" "$@"; }
cleanup() {
    rc=$?
    trap - EXIT INT TERM
    if [ "$rc" -ne 0 ]; then
        log "logs of the stack (last 60 lines per service):"
        dc logs --no-color --tail 60 2>&1 || true
    fi
    log "tearing down (containers, network, volumes)"
    dc --profile gpu down -v --remove-orphans >/dev/null 2>&1 || dc down -v --remove-orphans || true
    rm -rf "$tmp"
    log "done, rc=$rc, wall time $(( $(date +%s) - t0 )) s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
case "$network" in
    bridge) build_net=() ;;
    host)
        # docker-compose v1 refuses a published port under host networking and an override cannot
        # remove it: use compose.yaml without its `ports:` (anchors expanded, variables untouched,
        # so no secret lands in the copy), with relative paths still resolved from docker/.
        python3 - "$tmp/compose.yaml" <<'PY' || die "python3 with PyYAML is needed for SMOKE_NETWORK=host"
import sys, yaml
spec = yaml.safe_load(open("docker/compose.yaml"))
spec = {k: v for k, v in spec.items() if not k.startswith("x-")}
for service in spec["services"].values():
    service.pop("ports", None)
yaml.safe_dump(spec, open(sys.argv[1], "w"), sort_keys=False)
PY
        files=(--project-directory docker -f "$tmp/compose.yaml" -f docker/compose.hostnet.yaml)
        build_net=(--network host) ;;
    *) die "SMOKE_NETWORK must be bridge or host, not $network" ;;
esac
# The Docker CLI builds with BuildKit only through its buildx plugin; without it, the classic
# builder (every Dockerfile here works with both).
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0

log "compose: ${compose[*]} ($("${compose[@]}" version --short 2>/dev/null || true)); network: $network; data: $DATA_DIR"


# --- build ------------------------------------------------------------------------------------
# The build context is exactly what the Dockerfiles copy, sent as a tar: the repository root also
# holds a multi-GB .venv that the classic builder would otherwise upload for every image.
build() {
    local tag=$1 dockerfile=$2; shift 2
    local blog=$build_logs/$(basename "$dockerfile").log
    log "building $tag ($dockerfile; log: $blog)"
    tar -C "$repo" --exclude=__pycache__ --exclude=docker/.env -c \
        pyproject.toml README.md mfsearch search_spaces docker \
      | docker build "${build_net[@]}" -f "$dockerfile" -t "$tag" "$@" - >"$blog" 2>&1 \
      || { tail -n 40 "$blog"; die "building $tag failed (full log: $blog)"; }
}
args=()
for name in BASE_IMAGE PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST; do
    [ -n "${!name:-}" ] && args+=(--build-arg "$name=${!name}")
done
torch_args=()
for name in TORCH_INDEX_URL TORCH_VERSION TORCHVISION_VERSION; do
    [ -n "${!name:-}" ] && torch_args+=(--build-arg "$name=${!name}")
done
if [ "${SMOKE_SKIP_BUILD:-0}" != 1 ]; then
    build_logs=$(mktemp -d /tmp/mfsearch-smoke-build.XXXXXX)     # kept: the logs of the last build
    build "$IMAGE_PREFIX-postgres:15" docker/Dockerfile.postgres \
        --build-arg "BASE_IMAGE=${POSTGRES_BASE_IMAGE:-debian:bookworm-slim}"
    build "$IMAGE_PREFIX-mlflow:3.17.2" docker/Dockerfile.mlflow "${args[@]}"
    build "$IMAGE_PREFIX:cpu" docker/Dockerfile "${args[@]}" "${torch_args[@]}"
    log "images built"
fi
for image in "$IMAGE_PREFIX-postgres:15" "$IMAGE_PREFIX-mlflow:3.17.2" "$IMAGE_PREFIX:cpu"; do
    user=$(docker image inspect -f '{{.Config.User}}' "$image")
    [ -n "$user" ] && [ "$user" != root ] && [ "$user" != 0 ] || die "$image runs as root"
    log "$image runs as user $user"
done

# --- up ---------------------------------------------------------------------------------------
log "starting the stack"
dc up -d --no-build
wait_for() {   # what, seconds, command...
    local what=$1 limit=$2; shift 2
    local deadline=$(( $(date +%s) + limit ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || die "$what not ready after $limit s"
        sleep 3
    done
    log "$what ready"
}
mlflow_url=http://127.0.0.1:$MLFLOW_PORT
wait_for "MLflow server" 240 python3 -c "import urllib.request; urllib.request.urlopen('$mlflow_url/health', timeout=3)"
cluster_check='
import os, ray
ray.init(address=os.environ["RAY_HEAD_ADDRESS"], logging_level="ERROR", log_to_driver=False)
nodes = [n for n in ray.nodes() if n["Alive"]]
cpus = ray.cluster_resources().get("CPU", 0)
print(len(nodes), "nodes,", cpus, "CPUs")
assert len(nodes) >= 2 and cpus >= 1, (len(nodes), cpus)
'
wait_for "Ray cluster (head + worker)" 240 dc exec -T ray-head python3 -c "$cluster_check"
dc exec -T ray-head python3 -c "$cluster_check" | sed 's/^/  ray: /'

# --- the doors --------------------------------------------------------------------------------
code=$(python3 -c "
import urllib.request, urllib.error
try:
    urllib.request.urlopen('$mlflow_url/api/2.0/mlflow/experiments/search?max_results=1', timeout=10); print(200)
except urllib.error.HTTPError as e:
    print(e.code)")
[ "$code" = 401 ] || die "MLflow answered $code to a request without credentials (expected 401)"
log "MLflow refuses requests without credentials (401)"
if dc exec -T ray-head python3 -c "import socket; socket.create_connection(('127.0.0.1', 8265), 2)" >/dev/null 2>&1; then
    die "something listens on the Ray dashboard's port 8265"
fi
log "no Ray dashboard / Jobs API (port 8265 closed)"
wrong_token='
import os, sys
os.environ["RAY_AUTH_TOKEN"] = "0" * 64
import ray
try:
    ray.init(address=os.environ["RAY_HEAD_ADDRESS"], logging_level="CRITICAL", log_to_driver=False)
except Exception as err:
    print("refused:", type(err).__name__); sys.exit(0)
sys.exit("joined the cluster with a wrong token")
'
# (Ray's client retries for ~20 s, one warning a second on stderr: kept out of the output.)
timeout 120 "${compose[@]}" -p "$project" "${files[@]}" exec -T ray-head python3 -c "$wrong_token" 2>/dev/null \
    || die "Ray did not refuse a client with a wrong token"
log "Ray refuses a client with a wrong token"

# --- the sweep --------------------------------------------------------------------------------
log "running search_spaces/smoke.yaml from the head container"
dc exec -T ray-head sh -c 'exec mfsearch run /opt/mfsearch/search_spaces/smoke.yaml \
    --address "$RAY_HEAD_ADDRESS" --tracking-uri "$MLFLOW_TRACKING_URI" \
    --storage-path /shared/runs --data-root /data/cifar10' 2>&1 | sed 's/^/  mfsearch: /'
log "sweep finished"

# --- what landed in MLflow --------------------------------------------------------------------
MLFLOW_URL=$mlflow_url EXPECT=$expect python3 - <<'PY'
import base64, json, os, sys, urllib.parse, urllib.request

url, expect = os.environ["MLFLOW_URL"], int(os.environ["EXPECT"])
auth = base64.b64encode(f"admin:{os.environ['MLFLOW_AUTH_ADMIN_PASSWORD']}".encode()).decode()

def call(path, body=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)

exp = call("/api/2.0/mlflow/experiments/get-by-name?experiment_name=smoke")["experiment"]
runs = call("/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 1000}).get("runs", [])
def tags(run):
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}
children = [r for r in runs if "mlflow.parentRunId" in tags(r)]
parents = [r for r in runs if "mlflow.parentRunId" not in tags(r)]
finished = [r for r in children if r["info"]["status"] == "FINISHED"]
print(f"  mlflow: experiment smoke ({exp['experiment_id']}, artifacts at {exp['artifact_location']}): "
      f"{len(parents)} parent run(s), {len(children)} child runs, {len(finished)} FINISHED")
for r in children:
    t = tags(r)
    metrics = {m["key"]: m["value"] for m in r["data"].get("metrics", [])}
    print(f"  mlflow:   {r['info']['run_name']:<28} {r['info']['status']:<9} family={t.get('mfsearch.family', '?'):<15} "
          f"val/acc1={metrics.get('val/acc1', float('nan')):.3f}")
if len(finished) != expect:
    sys.exit(f"expected {expect} FINISHED child runs, found {len(finished)}")
# Artifacts went through the server (mlflow-artifacts:/ proxied), not to a path only the driver sees.
files = call("/api/2.0/mlflow/artifacts/list?" + urllib.parse.urlencode({"run_id": finished[0]["info"]["run_id"]})).get("files", [])
names = sorted(f["path"] for f in files)
print(f"  mlflow: artifacts of {finished[0]['info']['run_name']}: {', '.join(names)}")
if not exp["artifact_location"].startswith("mlflow-artifacts:") or "arch.yaml" not in names:
    sys.exit("the trial's artifacts are not served by the MLflow server")
PY
log "OK: $expect trials FINISHED in MLflow, artifacts served by the server"
