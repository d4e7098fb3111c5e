# Shared by the benchmark scripts (sourced, not run): release builds, a work dir cleaned on exit,
# processes killed by pid on exit, free ports, and a dev node to bind the gateway to.

# The load's shape from the usage's positional arguments: connections, pipeline depth each, seconds.
load_shape() { connections=${1:-200}; depth=${2:-4}; seconds=${3:-10}; }

build_release() {
    for product in "$@"; do swift build -c release --product "$product" >/dev/null; done
    bin=$(swift build -c release --show-bin-path)
}

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for_line() {
    for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "timeout waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1
}

# Starts a dev node on a free port; sets node_port.
start_devnode() {
    Tools/devnode/install.sh
    Tools/devnode/.venv/bin/python Tools/devnode/devnode.py --port 0 "$@" >"$work/devnode.log" 2>&1 &
    pids+=($!)
    wait_for_line "$work/devnode.log" "devnode listening"
    node_port=$(sed -n 's/.*http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/devnode.log" | head -1)
}

# Waits until the gateway on port $1 lists address $2 in eth_accounts (its backends have answered).
wait_for_account() {
    for _ in $(seq 1 200); do
        curl -sf -X POST "http://127.0.0.1:$1/" -d '{"jsonrpc":"2.0","id":1,"method":"eth_accounts"}' | grep -qi "${2:2}" && return 0
        sleep 0.1
    done
    echo "timeout waiting for $2 in the gateway's eth_accounts" >&2; exit 1
}
