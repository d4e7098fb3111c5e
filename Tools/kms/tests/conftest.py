"""Fixtures: real kms_server.py subprocesses on port 0 (killed by pid at the end), setup_keys.py
output, and a SigV4 signer written the way the Swift one is (canonical path/query passed in,
every supplied header signed), used for the raw HTTP requests."""

import functools
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# servertools (Tools/shared, stdlib only): the server-subprocess helpers every tool's tests share.
sys.path.insert(0, os.path.join(os.path.dirname(ROOT), "shared"))
import servertools  # noqa: E402

REGION = "us-east-1"
run_tool = functools.partial(servertools.run_tool, ROOT)


class KmsServer(servertools.ServerProcess):
    def __init__(self, *args, **popen_args):
        super().__init__([sys.executable, os.path.join(ROOT, "kms_server.py"), "--port", "0", *args], **popen_args)
        self.url = f"http://127.0.0.1:{self.port}"
        self.setup = None

    def parse_ready(self, line):
        if not line.startswith("kms listening on http://127.0.0.1:"):
            raise ValueError(line)
        self.port = int(line.rsplit(":", 1)[1])

    def setup_keys(self, count):
        out = run_tool("setup_keys.py", "--endpoint", self.url, "--count", str(count), "--region", REGION).stdout
        self.setup = json.loads(out)
        return self.setup

    def kms(self, access_key=None, secret=None, pool=10):
        return boto3.client("kms", endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id=access_key or self.setup["accessKeyId"],
                            aws_secret_access_key=secret or self.setup["secretAccessKey"],
                            config=Config(retries={"total_max_attempts": 1}, max_pool_connections=pool))

    def raw(self, operation, payload, access_key=None, secret=None, sign=True):
        """POST / as the Swift client does; returns (status, headers, body bytes)."""
        body = json.dumps(payload).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("Host", f"127.0.0.1:{self.port}"),
                   ("X-Amz-Target", f"TrentService.{operation}")]
        if sign:
            headers += swift_style_sign(access_key or self.setup["accessKeyId"],
                                        secret or self.setup["secretAccessKey"], None, REGION, "kms",
                                        "POST", "/", "", headers, body, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        req = urllib.request.Request(self.url + "/", data=body, headers=dict(headers), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()


def swift_style_sign(access_key, secret_key, token, region, service, method, canonical_path, canonical_query,
                     headers, body, amz_date):
    """The Swift SigV4.signingHeaders algorithm, in Python: returns the headers to add."""
    day = amz_date[:8]
    added = [("X-Amz-Date", amz_date)]
    if token is not None:
        added.append(("X-Amz-Security-Token", token))
    # lower-case name; value trimmed and inner runs of spaces folded to one (spaces only, as in Swift)
    canonical = sorted((n.lower(), " ".join(w for w in v.split(" ") if w)) for n, v in list(headers) + added)
    signed = ";".join(n for n, _ in canonical)
    creq = "\n".join([method, canonical_path, canonical_query, "".join(f"{n}:{v}\n" for n, v in canonical),
                      signed, hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    added.append(("Authorization", f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, "
                                   f"Signature={sig}"))
    return added


@pytest.fixture(scope="session")
def free_requests():
    return int(run_tool("setup_keys.py", "--free-requests").stdout)


@pytest.fixture(scope="session")
def server(free_requests):
    """Auth enforced after setup_keys' free requests; 3 keys (key 2 is the one tests disable)."""
    with KmsServer("--enforce-auth", str(free_requests)) as s:
        s.setup_keys(3)
        yield s


SIGN_LATENCY_MS = 200


@pytest.fixture(scope="session")
def slow_server():
    """No auth checks, SIGN_LATENCY_MS per Sign."""
    with KmsServer("--sign-latency-ms", str(SIGN_LATENCY_MS)) as s:
        s.setup_keys(1)
        yield s
