#!/usr/bin/env bash
# One run, two servers, same load: the raw NIO WebSocket echo server (REFERENCE §7's reference point) and the
# gateway answering eth_chainId from its cache. Each server is pinned to CPU 0 and the load client to CPU 1, so the
# ratio compares the servers' per-message cost on one core. Usage: loadtest/compare.sh [connections] [depth] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
connections=${1:-200}
depth=${2:-4}
seconds=${3:-10}

swift build -c release --product signer-gateway >/dev/null
swift build -c release --product loadtest >/dev/null
bin=$(swift build -c release --show-bin-path)
Tools/devnode/install.sh

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; echo "timeout waiting for $2 in $1" >&2; cat "$1" >&2; exit 1; }
logs=$(mktemp -d)

Tools/devnode/.venv/bin/python Tools/devnode/devnode.py --port 0 >"$logs/devnode.log" 2>&1 &
pids+=($!)
wait_for "$logs/devnode.log" "devnode listening"
node_port=$(sed -n 's/.*http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$logs/devnode.log" | head -1)

echo_port=$(free_port)
taskset -c 0 "$bin/loadtest" echo-server --port "$echo_port" >"$logs/echo.log" 2>&1 &
pids+=($!)
wait_for "$logs/echo.log" "listening"

gateway_port=$(free_port)
SIGNER_GATEWAY_NODE_URL="ws://127.0.0.1:$node_port/" SIGNER_GATEWAY_SERVER_PORT=$gateway_port \
SIGNER_GATEWAY_LOGGING_LEVEL=warning SIGNER_GATEWAY_LIMITS_MAX_CONNECTIONS=100000 \
    taskset -c 0 "$bin/signer-gateway" serve >"$logs/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 200); do
    curl -sf -X POST "http://127.0.0.1:$gateway_port/" -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' >/dev/null && break
    sleep 0.05
done

run() { taskset -c 1 "$bin/loadtest" run --url "$1" --connections "$connections" --depth "$depth" --seconds "$seconds" --json; }
echo_result=$(run "ws://127.0.0.1:$echo_port/")
gateway_result=$(run "ws://127.0.0.1:$gateway_port/")
echo "raw NIO echo:           $echo_result"
echo "gateway (eth_chainId):  $gateway_result"
python3 - "$echo_result" "$gateway_result" <<'PY'
import json, sys
echo, gateway = (json.loads(a) for a in sys.argv[1:3])
print(f"ratio gateway / raw NIO echo: {gateway['requests_per_second'] / echo['requests_per_second']:.3f}"
      f"  ({gateway['requests_per_second']:.0f} vs {echo['requests_per_second']:.0f} requests/s;"
      f" p99 {gateway['latency_us']['p99']} µs vs {echo['latency_us']['p99']} µs)")
PY
