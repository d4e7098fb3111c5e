"""Fixtures: real azure_server.py subprocesses on port 0 (killed by their own pid at the end), Microsoft's SDK
clients pointed at them, and a small raw HTTPS helper for what the SDK hides (status lines, headers, bodies)."""

import functools
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# servertools (Tools/shared, stdlib only): the server-subprocess helpers every tool's tests share.
sys.path.insert(0, os.path.join(os.path.dirname(ROOT), "shared"))
import servertools  # noqa: E402

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0d7b6a8e-3c1f-4f52-9a77-5b1c2d3e4f50"
CLIENT_SECRET = "test~secret.value-0123456789"
API_VERSION = "7.4"


run_tool = functools.partial(servertools.run_tool, ROOT)


class AzureServer(servertools.ServerProcess):
    def __init__(self, cert_dir, *args):
        super().__init__(
            [sys.executable, os.path.join(ROOT, "azure_server.py"), "--port", "0", "--imds-port", "0",
             "--cert-dir", str(cert_dir), "--tenant", TENANT, "--client-id", CLIENT_ID,
             "--client-secret", CLIENT_SECRET, *args])
        self.vault, self.authority, self.imds, self.ca = (self.info[k] for k in ("vault", "authority", "imds", "ca"))
        self.context = ssl.create_default_context(cafile=self.ca)

    def parse_ready(self, line):
        self.info = json.loads(line)

    # --- Microsoft's SDK -----------------------------------------------------------------------------------

    def credential(self, secret=CLIENT_SECRET, client_id=CLIENT_ID):
        from azure.identity import ClientSecretCredential
        return ClientSecretCredential(TENANT, client_id, secret, authority=self.authority,
                                      disable_instance_discovery=True, connection_verify=self.ca)

    def key_client(self, credential=None, **kwargs):
        from azure.keyvault.keys import KeyClient
        return KeyClient(self.vault, credential or self.credential(), api_version=API_VERSION,
                         verify_challenge_resource=False, connection_verify=self.ca, **kwargs)

    def crypto_client(self, key_id, credential=None):
        from azure.keyvault.keys.crypto import CryptographyClient
        return CryptographyClient(key_id, credential or self.credential(), api_version=API_VERSION,
                                  verify_challenge_resource=False, connection_verify=self.ca)

    # --- raw HTTP ------------------------------------------------------------------------------------------

    def raw(self, method, path, body=None, headers=None, base=None, form=None):
        """(status, headers, parsed JSON body or None)."""
        data = None
        headers = dict(headers or {})
        if form is not None:
            from urllib.parse import urlencode
            data = urlencode(form).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        req = urllib.request.Request((base or self.vault) + path, data=data, headers=headers, method=method)
        context = self.context if (base or self.vault).startswith("https") else None
        try:
            with urllib.request.urlopen(req, timeout=10, context=context) as resp:
                status, hdrs, raw = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, e.headers, e.read()
        return status, hdrs, (json.loads(raw) if raw else None)

    def token(self):
        status, _, body = self.raw("POST", f"/{TENANT}/oauth2/v2.0/token", form={
            "grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "scope": "https://vault.azure.net/.default"})
        assert status == 200, body
        return body["access_token"]

    def vault_call(self, method, path, body=None, token=None):
        sep = "&" if "?" in path else "?"
        return self.raw(method, f"{path}{sep}api-version={API_VERSION}", body,
                        {"Authorization": f"Bearer {token or self.token()}"})

    def control(self, op, body=None):
        status, _, answer = self.raw("GET" if body is None else "POST", f"/_control/{op}", body)
        assert status == 200, answer
        return answer

    def stats(self):
        return self.control("stats")


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("certs")


@pytest.fixture(scope="session")
def server(cert_dir):
    with AzureServer(cert_dir) as s:
        yield s


@pytest.fixture
def start_server(cert_dir):
    """Starts extra servers (other options) for one test and stops them after it."""
    started = []

    def start(*args):
        s = AzureServer(cert_dir, *args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def delta(server):
    """delta() -> the stats counters that changed since the test began."""
    before = server.stats()

    def diff():
        now = server.stats()
        out = {k: now[k] - before[k] for k in now if isinstance(now[k], int) and k != "pendingFaults"
               and now[k] != before[k]}
        for kind, n in now["tokenRequests"].items():
            if n != before["tokenRequests"][kind]:
                out[f"token:{kind}"] = n - before["tokenRequests"][kind]
        out.pop("maxConcurrentSigns", None)
        return out

    return diff
