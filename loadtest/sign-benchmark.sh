#!/usr/bin/env bash
# eth_signTransaction through the gateway (keystore backend, 200 pipelined WebSocket connections) against two
# references measured in the same run on the same core: the raw C secp256k1 signing rate and eth-account's
# Python signing rate. The gateway (and each reference) is pinned to CPU 0, the load client to CPU 1.
# Usage: loadtest/sign-benchmark.sh [connections] [depth] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
source loadtest/lib.sh
load_shape "$@"
build_release signer-gateway loadtest ethereum-benchmark
Tools/clients/install.sh

export BENCH_KEYSTORE_PASSWORD=bench
address=$("$bin/signer-gateway" keystore new --dir "$work/keys" --password env:BENCH_KEYSTORE_PASSWORD --light | cut -d' ' -f1)

start_devnode

port=$(free_port)
SIGNER_GATEWAY_ACCESS_ANONYMOUS=user SIGNER_GATEWAY_NODE_URL="ws://127.0.0.1:$node_port/" SIGNER_GATEWAY_SERVER_PORT=$port \
SIGNER_GATEWAY_KEYSTORE_DIRECTORY="$work/keys" SIGNER_GATEWAY_KEYSTORE_PASSWORD=env:BENCH_KEYSTORE_PASSWORD \
SIGNER_GATEWAY_JOURNAL_PATH=":memory:" SIGNER_GATEWAY_LOGGING_LEVEL=warning \
    taskset -c 0 "$bin/signer-gateway" serve >"$work/gateway.log" 2>&1 &
pids+=($!)
gateway_pid=$!
wait_for_account "$port" "$address"

# Every field given: the gateway parses, signs and encodes — no node call on this path.
params="[{\"from\":\"$address\",\"to\":\"$address\",\"value\":\"0x1\",\"gas\":\"0x5208\",\"maxFeePerGas\":\"0x77359400\",\"maxPriorityFeePerGas\":\"0x3b9aca00\",\"nonce\":\"0x0\",\"chainId\":\"0x539\"}]"
gateway=$(taskset -c 1 "$bin/loadtest" run --url "ws://127.0.0.1:$port/" --server-pid "$gateway_pid" \
    --connections "$connections" --depth "$depth" \
    --seconds "$seconds" --method eth_signTransaction --params "$params" --json)
kill "${pids[-1]}" 2>/dev/null || true

c_line=$(taskset -c 0 "$bin/ethereum-benchmark" 5 | grep "^raw C")
c_rate=$(echo "$c_line" | awk '{print $(NF-1)}')
python_rate=$(taskset -c 0 Tools/clients/.venv/bin/python - <<'PY'
import time
from eth_account import Account
account = Account.from_key("0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
tx = {"type": 2, "chainId": 1337, "nonce": 0, "to": account.address, "value": 1, "gas": 21000,
      "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**9}
count, start = 0, time.time()
while time.time() - start < 5:
    tx["nonce"] = count
    account.sign_transaction(tx)
    count += 1
print(int(count / (time.time() - start)))
PY
)
echo "gateway eth_signTransaction: $gateway"
echo "raw C secp256k1 sign (one core): $c_rate/s; eth-account sign_transaction (one core): $python_rate/s"
python3 - "$gateway" "$c_rate" "$python_rate" <<'PY'
import json, sys
gateway = json.loads(sys.argv[1]); c = float(sys.argv[2]); py = float(sys.argv[3])
rate = gateway["requests_per_second"]
cpu_us = gateway["server_cpu_us_per_request"]
capacity = 1e6 / cpu_us
print(f"gateway: {rate:.0f} req/s measured (p99 {gateway['latency_us']['p99']} µs, errors {gateway['errors']});"
      f" server CPU {cpu_us:.1f} µs per request → {capacity:.0f} req/s per core")
print(f"ratio gateway / raw C sign: {rate / c:.3f} measured, {capacity / c:.3f} per core of server CPU;"
      f"  ratio gateway / eth-account: {rate / py:.1f}x measured, {capacity / py:.1f}x per core")
PY
