"""vault_stack's JSON line and lifecycle, KV v2 keys, TLS with a client certificate, sign latency."""

import concurrent.futures
import json
import os
import signal
import ssl
import time

import pytest

from conftest import EIP155_ADDRESS, EIP155_KEY, Stack, pid_alive


def test_json_line_and_startup(stack):
    info = stack.info
    assert list(info) == ["address", "bao", "rootToken", "ca", "mount", "baoCa", "clientCert", "clientKey",
                          "baoPid"]
    assert info["address"].startswith("http://127.0.0.1:") and info["bao"].startswith("http://127.0.0.1:")
    assert (info["ca"], info["mount"], info["rootToken"]) == (None, "ethereum", "root-token-for-tests")
    assert stack.startup_s < 10
    # bao answers directly too: the proxy is in front of a real server
    r = stack.raw("GET", "/v1/sys/health", base=info["bao"])
    assert r.status == 200 and r.json()["initialized"] is True


def test_kv_v2_key(stack):
    out = stack.setup("kv", "--path", "gateway/key-a", "--private-key", EIP155_KEY)
    assert (out["mount"], out["path"], out["field"], out["address"]) == ("secret", "gateway/key-a", "privateKey",
                                                                         EIP155_ADDRESS)
    c = stack.hvac(token=out["token"])
    data = c.secrets.kv.v2.read_secret_version(path="gateway/key-a", mount_point="secret",
                                               raise_on_deleted_version=True)["data"]
    assert data["data"] == {"privateKey": EIP155_KEY} and data["metadata"]["version"] == out["version"]
    r = stack.raw("GET", "/v1/secret/data/gateway/other", token=out["token"])
    assert r.status == 403
    out = stack.setup("kv", "--namespace", "kvns", "--mount", "keys", "--path", "k1", "--format", "0x")
    r = stack.raw("GET", "/v1/keys/data/k1", token=out["token"], namespace="kvns")
    assert r.json()["data"]["data"]["privateKey"] == out["privateKey"] and out["privateKey"].startswith("0x")


def test_tls_proxy_with_client_cert_and_tls_bao(tmp_path):
    s = Stack("--tls-cert-dir", str(tmp_path), "--require-client-cert", "--bao-tls")
    try:
        info = s.info
        assert info["address"].startswith("https://127.0.0.1:") and info["bao"].startswith("https://")
        assert info["ca"] == str(tmp_path / "ca.pem") and os.path.exists(info["baoCa"])
        out = s.setup("--count", "1")
        r = s.sign(out["accounts"][0], {"data": "0x", "chainId": "1"}, token=out["userToken"])
        assert r.status == 200
        c = s.hvac()
        login = c.auth.approle.login(role_id=out["approle"]["roleId"], secret_id=out["approle"]["secretId"])
        assert login["auth"]["client_token"]
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            s.raw("GET", "/v1/sys/health", client_cert=False)
        with pytest.raises(ssl.SSLError):  # the proxy's CA is not bao's
            s.raw("GET", "/v1/sys/health", base=info["bao"])
    finally:
        assert s.stop() == 0


def test_sigterm_stops_bao_and_sign_latency_overlaps():
    s = Stack("--sign-latency-ms", "400")
    bao_pid = s.info["baoPid"]
    try:
        out = s.setup("--count", "1")
        addr = out["accounts"][0]
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            results = list(ex.map(lambda i: s.sign(addr, {"data": "0x", "nonce": str(i)}), range(4)))
        elapsed = time.monotonic() - t0
        assert all(r.status == 200 for r in results)
        assert 0.4 <= elapsed < 1.5, elapsed
        assert pid_alive(bao_pid)
    finally:
        assert s.stop(signal.SIGTERM) == 0
    deadline = time.monotonic() + 5
    while pid_alive(bao_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(bao_pid)
