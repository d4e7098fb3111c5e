#!/usr/bin/env bash
# One address, a key backend that takes LATENCY ms per signature, as a remote HSM or KMS does: how many
# eth_sendTransaction per second the gateway answers (signed, submitted in nonce order, hash returned), with p50/p99.
# Serial signing would cap one address at 1000/LATENCY tx/s (50 at 20 ms); the send pipeline signs up to
# send.signWindow transactions of one address at once and still submits them in nonce order.
# Afterwards the node's pending nonce of the address must equal the number of answered sends: none lost, no gap.
# Usage: loadtest/pipeline-benchmark.sh [latency-ms] [connections] [depth] [seconds] [send|sign]
# `sign`: eth_signTransaction with every field given instead (the backend's signing path alone: no lane, no node).
# BACKEND=delayed (default): an in-process key that waits LATENCY ms per signature (`loadtest delayed-gateway`), so
# that the gateway is measured, not a key server. BACKEND=kms: the real AWS KMS backend against Tools/kms
# (moto, --sign-latency-ms), whose own ceiling (~200 signatures/s here, Python) then bounds the result.
# BACKEND=azure: the Azure Key Vault backend against Tools/azure (HTTPS, Entra ID tokens, --sign-latency-ms).
set -euo pipefail
cd "$(dirname "$0")/.."
latency=${1:-20}
mode=${5:-send}
source loadtest/lib.sh
load_shape "${2:-50}" "${3:-4}" "${4:-10}"
build_release signer-gateway loadtest
kms_python=Tools/kms/.venv/bin/python
[ "${BACKEND:-delayed}" = kms ] && Tools/kms/install.sh

if [ "${BACKEND:-delayed}" = kms ]; then
    "$kms_python" Tools/kms/kms_server.py --port 0 --sign-latency-ms "$latency" \
        --enforce-auth "$("$kms_python" Tools/kms/setup_keys.py --free-requests)" >"$work/kms.log" 2>"$work/kms.err" &
    pids+=($!)
    wait_for_line "$work/kms.log" "kms listening"
    kms_url=$(sed -n 's/^kms listening on //p' "$work/kms.log")
    "$kms_python" Tools/kms/setup_keys.py --endpoint "$kms_url" --count 1 >"$work/keys.json"
    read -r address access_key secret_key region < <(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["keys"][0]["address"], d["accessKeyId"], d["secretAccessKey"], d["region"])' "$work/keys.json")
    start_devnode --block-time-ms 200 --fund "$address"
    cat >"$work/gateway.yaml" <<YAML
backends:
  - type: awsKms
    name: kms
    region: $region
    endpoint: $kms_url
    accessKeyId: env:BENCH_AWS_ACCESS_KEY_ID
    secretAccessKey: env:BENCH_AWS_SECRET_ACCESS_KEY
YAML
    port=$(free_port)
    BENCH_AWS_ACCESS_KEY_ID=$access_key BENCH_AWS_SECRET_ACCESS_KEY=$secret_key \
    SIGNER_GATEWAY_ACCESS_ANONYMOUS=user SIGNER_GATEWAY_NODE_URL="ws://127.0.0.1:$node_port/" SIGNER_GATEWAY_SERVER_PORT=$port \
    SIGNER_GATEWAY_JOURNAL_PATH="$work/journal.sqlite" SIGNER_GATEWAY_LOGGING_LEVEL=warning \
        "$bin/signer-gateway" serve --config "$work/gateway.yaml" >"$work/gateway.log" 2>&1 &
    pids+=($!)
    gateway_pid=$!
    wait_for_account "$port" "$address"
elif [ "${BACKEND:-delayed}" = azure ]; then
    Tools/azure/install.sh
    azure_python=Tools/azure/.venv/bin/python
    secret=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    "$azure_python" Tools/azure/azure_server.py --cert-dir "$work/azure-certs" --tenant bench --client-id bench \
        --client-secret "$secret" --sign-latency-ms "$latency" >"$work/azure.json" 2>"$work/azure.err" &
    pids+=($!)
    wait_for_line "$work/azure.json" "vault"
    read -r vault ca < <(python3 -c '
import json, sys
d = json.loads(open(sys.argv[1]).readline())
print(d["vault"], d["ca"])' "$work/azure.json")
    "$azure_python" Tools/azure/setup_keys.py --vault "$vault" --ca "$ca" --tenant bench --client-id bench \
        --client-secret "$secret" --count 1 >"$work/keys.json"
    address=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["keys"][0]["address"])' "$work/keys.json")
    start_devnode --block-time-ms 200 --fund "$address"
    cat >"$work/gateway.yaml" <<YAML
backends:
  - type: azureKeyVault
    name: akv
    vaultUrl: $vault
    authentication: clientSecret
    tenantId: bench
    clientId: bench
    clientSecret: env:BENCH_AZURE_CLIENT_SECRET
    authorityHost: $vault
    caFile: $ca
YAML
    port=$(free_port)
    BENCH_AZURE_CLIENT_SECRET=$secret SIGNER_GATEWAY_ACCESS_ANONYMOUS=user \
    SIGNER_GATEWAY_NODE_URL="ws://127.0.0.1:$node_port/" SIGNER_GATEWAY_SERVER_PORT=$port \
    SIGNER_GATEWAY_JOURNAL_PATH="$work/journal.sqlite" SIGNER_GATEWAY_LOGGING_LEVEL=warning \
        "$bin/signer-gateway" serve --config "$work/gateway.yaml" >"$work/gateway.log" 2>&1 &
    pids+=($!)
    gateway_pid=$!
    wait_for_account "$port" "$address"
else
    # Dev account 0 of every dev node: funded at genesis, its key public (keccak256("devnode:0")).
    start_devnode --block-time-ms 200
    port=$(free_port)
    "$bin/loadtest" delayed-gateway --node "ws://127.0.0.1:$node_port/" --port "$port" --latency-ms "$latency" \
        --key 0x1e535dbc1980a91be9ecc1f49a68c700720106f5e435207bc4759e83e0c7471d --journal "${JOURNAL:-$work/journal.sqlite}" \
        >"$work/gateway.log" 2>&1 &
    pids+=($!)
    gateway_pid=$!
    wait_for_line "$work/gateway.log" "delayed-gateway listening"
    address=$(sed -n 's/.* account \(0x[0-9a-fA-F]*\).*/\1/p' "$work/gateway.log")
fi

# Gas and fees given, nonce not: each request takes the address's next nonce and waits for its signature.
params="[{\"from\":\"$address\",\"to\":\"$address\",\"value\":\"0x1\",\"gas\":\"0x5208\",\"maxFeePerGas\":\"0x77359400\",\"maxPriorityFeePerGas\":\"0x3b9aca00\"}]"
method=eth_sendTransaction
if [ "$mode" = sign ]; then
    method=eth_signTransaction
    params="${params%\}]},\"nonce\":\"0x0\",\"chainId\":\"0x539\"}]"
fi
# PROFILE=file.data: the gateway sampled with perf during the measured window (perf report -i file.data).
if [ -n "${PROFILE:-}" ]; then
    (sleep 2; perf record -F 499 -g -p "$gateway_pid" -o "$PROFILE" -- sleep "$seconds" >/dev/null 2>&1) &
fi
result=$("$bin/loadtest" run --url "ws://127.0.0.1:$port/" --server-pid "$gateway_pid" \
    --connections "$connections" --depth "$depth" --warmup 2 \
    --seconds "$seconds" --method "$method" --params "$params" --json)
# Let the last answers land, then stop sending (the harness has exited) and compare with the node.
sleep 2
pending=$(curl -sf -X POST "http://127.0.0.1:$node_port/" -H 'Content-Type: application/json' \
    -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_getTransactionCount\",\"params\":[\"$address\",\"pending\"]}")
echo "backend ${BACKEND:-delayed}, sign latency ${latency} ms, one address, $connections connections x depth $depth"
echo "loadtest: $result"
python3 - "$result" "$pending" "$latency" "$method" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); pending = int(json.loads(sys.argv[2])["result"], 16); latency = float(sys.argv[3])
rate = r["requests_per_second"]
print(f"{sys.argv[4]} from one address: {rate:.0f} tx/s (serial signing would be {1000 / latency:.0f} tx/s),"
      f" p50 {r['latency_us']['p50'] / 1000:.1f} ms, p99 {r['latency_us']['p99'] / 1000:.1f} ms, errors {r['errors']}")
print(f"server CPU per request: {r['server_cpu_us_per_request']:.0f} µs")
print(f"node's pending nonce for the address after the run: {pending} (every answered send, warm-up included)")
PY
