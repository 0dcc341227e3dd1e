#!/usr/bin/env bash
# Screenshots of the MLflow UI views mfsearch publishes, in a real (headless) Chromium.
#   dashboards/take_screenshots.sh sqlite:////path/to/mlflow.db EXPERIMENT_ID [OUT_DIR]
# Starts `mlflow ui` on a free loopback port, opens each view, writes mlflow_<view>_view.png, and
# stops the server it started (by its process id).
set -euo pipefail
uri=$1; exp=$2; out=${3:-$(dirname "$0")}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mlflow ui --backend-store-uri "$uri" --host 127.0.0.1 --port "$port" >/dev/null 2>&1 &
server=$!
profile=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$profile"' EXIT
for _ in $(seq 1 90); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 1; done
for view in confirm sweep; do
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --user-data-dir="$profile" --window-size=1900,760 \
        --virtual-time-budget=20000 --screenshot="$out/mlflow_${view}_view.png" \
        "http://127.0.0.1:$port/#/experiments/$exp/runs?viewStateShareKey=mfsearch-$view&workflowType=machine_learning" \
        2>/dev/null
done
echo "wrote $out/mlflow_confirm_view.png $out/mlflow_sweep_view.png"
