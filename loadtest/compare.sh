#!/usr/bin/env bash
# One run, two servers, same load: the raw NIO WebSocket echo server (REFERENCE §7's reference point) and the
# gateway answering eth_chainId from its cache. Each server is pinned to CPU 0 and the load client to CPU 1, so the
# ratio compares the servers' per-message cost on one core. Usage: loadtest/compare.sh [connections] [depth] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
source loadtest/lib.sh
load_shape "$@"
build_release signer-gateway loadtest
start_devnode

echo_port=$(free_port)
taskset -c 0 "$bin/loadtest" echo-server --port "$echo_port" >"$work/echo.log" 2>&1 &
pids+=($!)
echo_pid=$!
wait_for_line "$work/echo.log" "listening"

gateway_port=$(free_port)
SIGNER_GATEWAY_ACCESS_ANONYMOUS=user SIGNER_GATEWAY_NODE_URL="ws://127.0.0.1:$node_port/" SIGNER_GATEWAY_SERVER_PORT=$gateway_port \
SIGNER_GATEWAY_LOGGING_LEVEL=warning SIGNER_GATEWAY_LIMITS_MAX_CONNECTIONS=100000 SIGNER_GATEWAY_JOURNAL_PATH=":memory:" \
    taskset -c 0 "$bin/signer-gateway" serve >"$work/gateway.log" 2>&1 &
pids+=($!)
gateway_pid=$!
for _ in $(seq 1 200); do
    curl -sf -X POST "http://127.0.0.1:$gateway_port/" -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' >/dev/null && break
    sleep 0.05
done

run() { taskset -c 1 "$bin/loadtest" run --url "$1" --server-pid "$2" --connections "$connections" --depth "$depth" --seconds "$seconds" --json; }
echo_result=$(run "ws://127.0.0.1:$echo_port/" "$echo_pid")
gateway_result=$(run "ws://127.0.0.1:$gateway_port/" "$gateway_pid")
echo "raw NIO echo:           $echo_result"
echo "gateway (eth_chainId):  $gateway_result"
python3 - "$echo_result" "$gateway_result" <<'PY'
import json, sys
echo, gateway = (json.loads(a) for a in sys.argv[1:3])
e_rps, g_rps = echo["requests_per_second"], gateway["requests_per_second"]
e_us, g_us = echo["server_cpu_us_per_request"], gateway["server_cpu_us_per_request"]
print(f"throughput: gateway {g_rps:.0f} vs raw NIO echo {e_rps:.0f} requests/s (ratio {g_rps / e_rps:.3f});"
      f" p99 {gateway['latency_us']['p99']} vs {echo['latency_us']['p99']} µs")
# On two cores the load client saturates its core before either server does, so throughput alone cannot tell the
# servers apart: server CPU per request (measured window only) is the comparison.
print(f"server CPU per request: gateway {g_us:.2f} µs vs raw NIO echo {e_us:.2f} µs"
      f" → one core serves ≈ {1e6 / g_us:.0f} vs {1e6 / e_us:.0f} requests/s (ratio {e_us / g_us:.3f})")
PY
