"""Fixtures: real vault_stack.py subprocesses (OpenBao dev server + the ethsign proxy; stopped by pid at the end),
setup_vault.py output, and a raw HTTP helper that sends exact bytes and any method (LIST) and returns exact bytes."""

import functools
import http.client
import json
import os
import ssl
import sys
import urllib.parse

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
# servertools (Tools/shared, stdlib only): the server-subprocess helpers every tool's tests share.
sys.path.insert(0, os.path.join(os.path.dirname(ROOT), "shared"))
import servertools  # noqa: E402

ROOT_TOKEN = "root-token-for-tests"
# go-ethereum's / EIP-155's example key: the signed transaction of the EIP is the test vector.
EIP155_KEY = "46" * 32
EIP155_ADDRESS = "0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f"

DENIED = b'{"errors":["1 error occurred:\\n\\t* permission denied\\n\\n"]}\n'
BAD_TOKEN = b'{"errors":["permission denied"]}\n'


run_tool = functools.partial(servertools.run_tool, ROOT)


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


class Stack(servertools.ServerProcess):
    ready_what = "JSON line"
    stop_timeout = 15

    def __init__(self, *args):
        super().__init__([sys.executable, os.path.join(ROOT, "vault_stack.py"), *args])
        self.address = self.info["address"]
        self.root = self.info["rootToken"]
        self.mount = self.info["mount"]

    def parse_ready(self, line):
        self.info = json.loads(line)

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
    with Stack("--root-token", ROOT_TOKEN) as s:
        yield s


@pytest.fixture(scope="session")
def setup(stack):
    """Root namespace: policies, AppRole (token TTL 1h), the EIP-155 key imported + 2 new accounts."""
    return stack.setup("--count", "2", "--import", EIP155_KEY)
