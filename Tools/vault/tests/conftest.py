"""Fixtures: real vault_stack.py subprocesses (OpenBao dev server + the ethsign proxy; stopped by pid at the end),
setup_vault.py output, and a raw HTTP helper that sends exact bytes and any method (LIST) and returns exact bytes."""

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

ROOT_TOKEN = "root-token-for-tests"
# go-ethereum's / EIP-155's example key: the signed transaction of the EIP is the test vector.
EIP155_KEY = "46" * 32
EIP155_ADDRESS = "0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f"

DENIED = b'{"errors":["1 error occurred:\\n\\t* permission denied\\n\\n"]}\n'
BAD_TOKEN = b'{"errors":["permission denied"]}\n'


def run_tool(*args, check=True):
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Stack:
    def __init__(self, *args):
        t0 = time.monotonic()
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "vault_stack.py"), *args],
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        line = self.proc.stdout.readline()
        self.startup_s = time.monotonic() - t0
        try:
            self.info = json.loads(line)
        except ValueError:
            self.stop(signal.SIGKILL)
            raise AssertionError(f"no JSON line: {line!r}\n{self.stderr_text()}")
        self.address = self.info["address"]
        self.root = self.info["rootToken"]
        self.mount = self.info["mount"]

    def ssl_context(self, client_cert=True):
        if not self.address.startswith("https"):
            return None
        ctx = ssl.create_default_context(cafile=self.info["ca"])
        if client_cert and self.info["clientCert"]:
            ctx.load_cert_chain(self.info["clientCert"], self.info["clientKey"])
        return ctx

    def raw(self, method, path, body=None, token=None, namespace=None, headers=(), base=None, client_cert=True):
        """One request on a new connection; body: bytes, str or a JSON-able object. Returns Response."""
        u = urllib.parse.urlsplit(base or self.address)
        if u.scheme == "https":
            c = http.client.HTTPSConnection(u.hostname, u.port, context=self.ssl_context(client_cert), timeout=30)
        else:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        h = dict(headers)
        if token is not None:
            h["X-Vault-Token"] = token
        if namespace is not None:
            h["X-Vault-Namespace"] = namespace
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return Response(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def plugin(self, method, rel, body=None, token=None, **kw):
        return self.raw(method, f"/v1/{self.mount}/{rel}", body, token if token is not None else self.root, **kw)

    def sign(self, address, tx, token=None, **kw):
        return self.plugin("POST", f"accounts/{address}/sign", tx, token, **kw)

    def setup(self, *args):
        extra = ["--ca", self.info["ca"]] if self.info["ca"] else []
        if self.info["clientCert"]:
            extra += ["--client-cert", self.info["clientCert"], "--client-key", self.info["clientKey"]]
        first = list(args[:1]) if args[:1] == ("kv",) else []
        return json.loads(run_tool("setup_vault.py", *first, "--address", self.address, "--token", self.root,
                                   *extra, *args[len(first):]).stdout)

    def hvac(self, token=None, namespace=None):
        import hvac
        verify = self.info["ca"] or True
        cert = (self.info["clientCert"], self.info["clientKey"]) if self.info["clientCert"] else None
        return hvac.Client(url=self.address, token=token, namespace=namespace, verify=verify, cert=cert)

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def stack():
    s = Stack("--root-token", ROOT_TOKEN)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def setup(stack):
    """Root namespace: policies, AppRole (token TTL 1h), the EIP-155 key imported + 2 new accounts."""
    return stack.setup("--count", "2", "--import", EIP155_KEY)
