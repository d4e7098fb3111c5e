"""azure_server.py and setup_keys.py, checked by Microsoft's own SDK (azure-keyvault-keys, azure-identity) and
by raw HTTPS where the wire format itself is the point. The servers run as subprocesses, as the Swift tests run them."""

import base64
import hashlib
import json
import os
import re
import socket
import ssl
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, ResourceExistsError,
                                   ResourceNotFoundError)
from azure.identity import ManagedIdentityCredential
from azure.keyvault.keys import JsonWebKey, KeyCurveName, KeyType
from azure.keyvault.keys.crypto import SignatureAlgorithm
from Crypto.Hash import keccak
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from conftest import API_VERSION, CLIENT_ID, CLIENT_SECRET, TENANT, run_tool

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141  # secp256k1 group order


def name(prefix="k"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def address(x, y):
    return "0x" + keccak.new(digest_bits=256, data=bytes(x) + bytes(y)).digest()[-20:].hex()


def public_key(jwk):
    return ec.EllipticCurvePublicNumbers(int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big"),
                                         ec.SECP256K1()).public_key()


def verify_rs(pub, digest, rs):
    assert len(rs) == 64
    der = utils.encode_dss_signature(int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big"))
    pub.verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


# --- startup, TLS, certificates -----------------------------------------------------------------------------------

def test_ready_line(server, cert_dir):
    assert re.fullmatch(r'\{"vault": "https://127\.0\.0\.1:(\d+)", "authority": "https://127\.0\.0\.1:\1", '
                        r'"imds": "http://127\.0\.0\.1:\d+", "ca": "[^"]+"\}\n', server.ready_line)
    assert server.ca == os.path.join(str(cert_dir), "ca.pem") and os.path.isabs(server.ca)
    assert server.startup_s < 10
    assert server.proc.poll() is None


def handshake(server, context, hostname="127.0.0.1"):
    """The negotiated TLS version of one connection to the HTTPS port."""
    port = int(server.vault.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with context.wrap_socket(raw, server_hostname=hostname) as tls:
            return tls.version()


def test_tls_1_2_or_later_and_certificate_reuse(server, start_server, cert_dir):
    assert handshake(server, server.context) in ("TLSv1.2", "TLSv1.3")
    assert handshake(server, server.context, "localhost") in ("TLSv1.2", "TLSv1.3")  # localhost is in the SAN too
    tls12 = ssl.create_default_context(cafile=server.ca)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(server, tls12) == "TLSv1.2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(server.ca)
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(server, old)
    with open(server.ca, "rb") as f:
        ca = f.read()
    second = start_server()  # same DIR: the CA and the server certificate are reused
    with open(second.ca, "rb") as f:
        assert f.read() == ca
    assert second.raw("GET", "/_control/stats")[0] == 200


def test_bad_arguments():
    proc = run_tool("azure_server.py", "--tenant", "t", "--client-id", "c", "--client-secret", "s", check=False)
    assert proc.returncode == 2 and "--cert-dir" in proc.stderr
    proc = run_tool("setup_keys.py", "--count", "1", check=False)
    assert proc.returncode == 2 and "--vault" in proc.stderr


def test_sigterm_exits_at_once_with_a_sign_in_flight(start_server):
    s = start_server("--sign-latency-ms", "5000")
    kid = s.key_client().create_ec_key(name(), curve="P-256K").id
    token = s.token()

    def in_flight_sign():
        try:
            s.vault_call("POST", kid[len(s.vault):] + "/sign", {"alg": "ES256K", "value": "A" * 43}, token)
        except OSError:
            pass  # the server is gone before it answers: that is the point

    threading.Thread(target=in_flight_sign, daemon=True).start()
    deadline = time.monotonic() + 5
    while s.stats()["signRequests"] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - t0 < 2


# --- authority: discovery, client credentials ----------------------------------------------------------------

def test_openid_configuration(server):
    status, _, body = server.raw("GET", f"/{TENANT}/v2.0/.well-known/openid-configuration")
    assert status == 200
    assert body["token_endpoint"] == f"{server.authority}/{TENANT}/oauth2/v2.0/token"
    assert body["authorization_endpoint"] == f"{server.authority}/{TENANT}/oauth2/v2.0/authorize"
    assert body["issuer"] == f"{server.authority}/{TENANT}/v2.0"
    status, _, body = server.raw("GET", "/other-tenant/v2.0/.well-known/openid-configuration")
    assert status == 400 and body["error"] == "invalid_tenant" and body["error_codes"] == [90002]


def test_token_endpoint_wire_format(server):
    path = f"/{TENANT}/oauth2/v2.0/token"
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "scope": "https://vault.azure.net/.default"}
    status, _, body = server.raw("POST", path, form=form)
    assert status == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["ext_expires_in"] == 3600
    assert isinstance(body["access_token"], str) and len(body["access_token"]) > 32
    status, _, body = server.raw("POST", path, form=dict(form, client_secret="wrong"))
    assert status == 401 and body["error"] == "invalid_client" and body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    status, _, body = server.raw("POST", path, form=dict(form, client_id=str(uuid.uuid4())))
    assert status == 400 and body["error"] == "unauthorized_client" and body["error_codes"] == [700016]
    status, _, body = server.raw("POST", path, form=dict(form, scope="https://vault.azure.net"))
    assert status == 400 and body["error"] == "invalid_scope"
    status, _, body = server.raw("POST", path, form=dict(form, grant_type="password"))
    assert status == 400 and body["error"] == "unsupported_grant_type"


def test_wrong_client_secret_is_a_client_authentication_error(server, delta):
    with pytest.raises(ClientAuthenticationError) as e:
        server.key_client(server.credential(secret="not-the-secret")).get_key("anything")
    assert "AADSTS7000215" in str(e.value)
    d = delta()
    assert d["tokenErrors"] >= 1 and "token:client_credentials" not in d


# --- vault: the challenge ------------------------------------------------------------------------------------

def test_missing_token_gets_the_challenge(server):
    status, headers, body = server.raw("GET", f"/keys?api-version={API_VERSION}")
    assert status == 401
    assert headers["WWW-Authenticate"] == (f'Bearer authorization="{server.authority}/{TENANT}", '
                                           'resource="https://vault.azure.net"')
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert body == {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}
    status, headers, body = server.raw("GET", f"/keys?api-version={API_VERSION}",
                                       headers={"Authorization": "Bearer not-a-token"})
    assert status == 401 and "WWW-Authenticate" in headers and body["error"]["code"] == "Unauthorized"


def test_sdk_challenge_flow(start_server):
    # A server of its own: azure-keyvault-keys caches challenges per host:port for the whole process.
    s = start_server("--log-requests")
    client = s.key_client()
    k = client.create_ec_key(name(), curve="P-256K")
    stats = s.stats()
    assert stats["challenges"] == 1 and stats["tokenRequests"]["client_credentials"] == 1
    assert stats["vaultRequests"] == 2  # the bodiless probe (401), then the create with its body
    client.get_key(k.name)
    stats = s.stats()
    assert stats["challenges"] == 1 and stats["tokenRequests"]["client_credentials"] == 1
    log = s.stderr_text()
    assert re.search(r'"POST /keys/[^/]+/create\?api-version=7\.4 HTTP/1\.1" 401', log)
    assert re.search(r'"POST /keys/[^/]+/create\?api-version=7\.4 HTTP/1\.1" 200', log)
    assert f'"GET /{TENANT}/v2.0/.well-known/openid-configuration HTTP/1.1" 200' in log


# --- keys: create, import, get, list ----------------------------------------------------------------------------

def test_create_and_get(server):
    client = server.key_client()
    created = client.create_ec_key(n := name(), curve=KeyCurveName.p_256_k)
    assert created.key.kty == KeyType.ec and created.key.crv == KeyCurveName.p_256_k
    assert len(created.key.x) == 32 and len(created.key.y) == 32
    assert created.key.key_ops == ["sign", "verify"]
    assert created.id == f"{server.vault}/keys/{n}/{created.properties.version}"
    assert re.fullmatch(r"[0-9a-f]{32}", created.properties.version)
    got = client.get_key(n)
    assert got.id == created.id and got.key.x == created.key.x and got.properties.enabled
    assert client.get_key(n, created.properties.version).key.y == created.key.y
    hsm = client.create_ec_key(name(), curve="P-256K", hardware_protected=True)
    assert hsm.key.kty == KeyType.ec_hsm
    # the wire format: x, y unpadded base64url; versionless paths with and without the slash
    for path in (f"/keys/{n}", f"/keys/{n}/"):
        status, _, body = server.vault_call("GET", path)
        assert status == 200 and body["key"]["kid"] == created.id
        assert set(body["key"]) == {"kid", "kty", "key_ops", "crv", "x", "y"}
        assert len(body["key"]["x"]) == 43 and "=" not in body["key"]["x"] + body["key"]["y"]
        assert body["attributes"]["enabled"] is True and isinstance(body["attributes"]["created"], int)


def test_import_key_address_matches_private_key(server):
    private = ec.generate_private_key(ec.SECP256K1())
    numbers = private.public_key().public_numbers()
    x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
    jwk = JsonWebKey(kty=KeyType.ec, crv=KeyCurveName.p_256_k, key_ops=["sign", "verify"],
                     d=private.private_numbers().private_value.to_bytes(32, "big"), x=x, y=y)
    client = server.key_client()
    imported = client.import_key(n := name(), jwk)
    assert bytes(imported.key.x) == x and bytes(imported.key.y) == y
    assert address(imported.key.x, imported.key.y) == address(x, y)
    digest = hashlib.sha256(b"imported").digest()
    rs = server.crypto_client(imported.id).sign(SignatureAlgorithm.es256_k, digest).signature
    verify_rs(private.public_key(), digest, rs)
    # a private key that does not match x, y is refused
    other = ec.generate_private_key(ec.SECP256K1()).private_numbers().private_value.to_bytes(32, "big")
    with pytest.raises(HttpResponseError) as e:
        client.import_key(n, JsonWebKey(kty=KeyType.ec, crv=KeyCurveName.p_256_k, d=other, x=x, y=y))
    assert e.value.status_code == 400 and e.value.error.code == "BadParameter"


def test_known_address_vector(server):
    # private key 1 is the generator point; its Ethereum address is well known.
    out = json.loads(run_tool("setup_keys.py", "--vault", server.vault, "--ca", server.ca, "--tenant", TENANT,
                              "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--prefix", name("one"),
                              "--private-key", "01".rjust(64, "0")).stdout)
    assert out["keys"][0]["address"] == "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"


def test_list_keys_and_versions_page_through_next_link(start_server):
    s = start_server()  # its own vault, so the listing is exactly these keys
    client = s.key_client()
    names = sorted(name("list") for _ in range(7))
    for n in names:
        client.create_ec_key(n, curve="P-256K")
    pages = [[p.name for p in page] for page in client.list_properties_of_keys(max_page_size=2).by_page()]
    assert pages == [names[0:2], names[2:4], names[4:6], names[6:7]]
    props = next(iter(client.list_properties_of_keys(max_page_size=2)))
    assert props.id == f"{s.vault}/keys/{names[0]}" and props.version is None and props.enabled
    for _ in range(2):
        client.create_ec_key(names[0], curve="P-256K")  # new versions of the same key
    versions = [[p.version for p in page]
                for page in client.list_properties_of_key_versions(names[0], max_page_size=2).by_page()]
    assert [len(p) for p in versions] == [2, 1]
    assert client.get_key(names[0]).properties.version == versions[-1][-1]  # the newest is the latest
    status, _, body = s.vault_call("GET", "/keys?maxresults=3")
    assert status == 200 and len(body["value"]) == 3
    assert body["nextLink"].startswith(f"{s.vault}/keys?api-version=7.4&$skiptoken=")
    assert body["nextLink"].endswith("&maxresults=3")
    status, _, body = s.vault_call("GET", "/keys?maxresults=25")
    assert len(body["value"]) == 7 and body["nextLink"] is None
    status, _, body = s.vault_call("GET", "/keys?maxresults=26")
    assert status == 400 and body["error"]["code"] == "BadParameter"


# --- sign -------------------------------------------------------------------------------------------------------

def test_sign_es256k_verifies_and_is_not_low_s_normalised(server, delta):
    key = server.key_client().create_ec_key(name(), curve="P-256K")
    crypto = server.crypto_client(key.id)
    pub = public_key(key.key)
    high_s = 0
    for i in range(24):
        digest = hashlib.sha256(b"message %d" % i).digest()
        result = crypto.sign(SignatureAlgorithm.es256_k, digest)
        assert result.key_id == key.id and result.algorithm == SignatureAlgorithm.es256_k
        verify_rs(pub, digest, result.signature)
        with pytest.raises(InvalidSignature):
            verify_rs(pub, hashlib.sha256(b"other").digest(), result.signature)
        high_s += int.from_bytes(result.signature[32:], "big") > N // 2
    assert 0 < high_s < 24  # both halves occur (each has probability 2^-24 of never showing)
    d = delta()
    assert d["signs"] == 24 and d["signRequests"] == 24


def test_sign_wire_format_and_verify_endpoint(server):
    key = server.key_client().create_ec_key(name(), curve="P-256K")
    path = key.id[len(server.vault):]
    digest = hashlib.sha256(b"raw").digest()
    value = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    token = server.token()
    status, _, body = server.vault_call("POST", path + "/sign", {"alg": "ES256K", "value": value}, token)
    assert status == 200 and set(body) == {"kid", "value"} and body["kid"] == key.id
    assert len(body["value"]) == 86 and "=" not in body["value"]
    status, _, verified = server.vault_call("POST", path + "/verify",
                                            {"alg": "ES256K", "digest": value, "value": body["value"]}, token)
    assert status == 200 and verified == {"value": True}
    # versionless sign path (empty version segment) signs with the latest version
    status, _, body = server.vault_call("POST", f"/keys/{key.name}//sign", {"alg": "ES256K", "value": value}, token)
    assert status == 200 and body["kid"] == key.id
    status, _, body = server.vault_call("POST", path + "/sign", {"alg": "ES256", "value": value}, token)
    assert status == 400 and body["error"]["code"] == "BadParameter"


def test_bad_digest_length(server):
    key = server.key_client().create_ec_key(name(), curve="P-256K")
    with pytest.raises(HttpResponseError) as e:
        server.crypto_client(key.id).sign(SignatureAlgorithm.es256_k, b"\x01" * 31)
    assert e.value.status_code == 400 and e.value.error.code == "BadParameter"
    assert e.value.error.message == ("Invalid length of 'value': 31 bytes. ES256K requires 32 bytes, "
                                     "encoded with base64url.")


def test_concurrent_signs_overlap(server):
    key = server.key_client().create_ec_key(name(), curve="P-256K")
    crypto = server.crypto_client(key.id)
    crypto.sign(SignatureAlgorithm.es256_k, b"\0" * 32)  # warm up (challenge, token, key fetch)
    server.control("sign-latency", {"ms": 300})
    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: crypto.sign(SignatureAlgorithm.es256_k, bytes([i]) * 32), range(8)))
        elapsed = time.monotonic() - t0
    finally:
        server.control("sign-latency", {"ms": 0})
    assert len(results) == 8 and 0.3 <= elapsed < 8 * 0.3 * 0.75
    assert server.stats()["maxConcurrentSigns"] >= 2


# --- deleted and disabled keys --------------------------------------------------------------------------------------

def test_deleted_key_is_not_found(server):
    client = server.key_client()
    key = client.create_ec_key(n := name(), curve="P-256K")
    deleted = client.begin_delete_key(n, _polling_interval=0.1).result()
    assert deleted.recovery_id == f"{server.vault}/deletedkeys/{n}"
    with pytest.raises(ResourceNotFoundError) as e:
        client.get_key(n)
    assert e.value.status_code == 404 and e.value.error.code == "KeyNotFound"
    assert e.value.error.message.startswith(f"A key with (name/id) {n} was not found in this key vault.")
    with pytest.raises(ResourceNotFoundError):
        server.crypto_client(key.id).sign(SignatureAlgorithm.es256_k, b"\x02" * 32)
    with pytest.raises(ResourceNotFoundError):
        client.get_key(name("never"))
    assert client.get_deleted_key(n).name == n
    with pytest.raises(ResourceExistsError) as e:  # the name stays taken until purged
        client.create_ec_key(n, curve="P-256K")
    assert e.value.status_code == 409
    client.purge_deleted_key(n)
    assert client.create_ec_key(n, curve="P-256K").name == n


def test_disabled_key_refuses_to_sign(server):
    client = server.key_client()
    key = client.create_ec_key(n := name(), curve="P-256K")
    assert client.update_key_properties(n, enabled=False).properties.enabled is False
    got = client.get_key(n)  # Azure still returns a disabled key (with enabled false) ...
    assert got.properties.enabled is False and got.key.x == key.key.x
    with pytest.raises(HttpResponseError) as e:  # ... but will not sign with it
        server.crypto_client(key.id).sign(SignatureAlgorithm.es256_k, b"\x03" * 32)
    assert e.value.status_code == 403 and e.value.error.code == "Forbidden"
    assert e.value.error.message == "Operation sign is not allowed on a disabled key."
    assert e.value.error.innererror == {"code": "KeyDisabled"}
    client.update_key_properties(n, enabled=True)
    server.crypto_client(key.id).sign(SignatureAlgorithm.es256_k, b"\x03" * 32)


# --- throttling, 5xx --------------------------------------------------------------------------------------------

def test_throttled_request_is_retried_after_retry_after(server, delta):
    client = server.key_client()
    key = client.create_ec_key(name(), curve="P-256K")
    server.control("throttle", {"count": 1, "retryAfter": 1})
    t0 = time.monotonic()
    assert client.get_key(key.name).id == key.id
    assert time.monotonic() - t0 >= 0.9  # the SDK waited Retry-After
    d = delta()
    assert d["throttled"] == 1 and server.stats()["pendingFaults"] == 0
    server.control("throttle", {"count": 1, "retryAfter": 7})
    status, headers, body = server.vault_call("GET", f"/keys/{key.name}")
    assert status == 429 and headers["Retry-After"] == "7"
    assert body == {"error": {"code": "Throttled", "message": "Request was not processed because too many requests "
                                                              "were received. Reason: VaultRequestTypeLimitReached"}}


def test_503_is_retried(server, delta):
    client = server.key_client()
    key = client.create_ec_key(name(), curve="P-256K")
    server.control("fail", {"count": 1, "status": 503})
    assert client.get_key(key.name).id == key.id
    assert delta()["failed"] == 1
    server.control("fail", {"count": 1, "status": 500, "retryAfter": 2})
    status, headers, body = server.vault_call("GET", f"/keys/{key.name}")
    assert status == 500 and headers["Retry-After"] == "2" and body["error"]["code"] == "InternalServerError"


# --- token expiry ------------------------------------------------------------------------------------------------

class FreshTokenCredential:
    """A ClientSecretCredential per token request: a client that drops its cached token when the vault answers
    401 (as the Swift backend must). azure-identity's own credential keeps its token cached in MSAL instead."""

    def __init__(self, server):
        self.server = server

    def get_token(self, *scopes, **kwargs):
        return self.server.credential().get_token(*scopes, **kwargs)


def test_expired_token_gets_the_challenge_and_a_new_token_works(server, delta):
    client = server.key_client(FreshTokenCredential(server))
    key = client.create_ec_key(name(), curve="P-256K")
    before = delta()
    server.control("expire-tokens", {})
    assert client.get_key(key.name).id == key.id  # 401 challenge -> new token -> retried request
    d = delta()
    assert d["challenges"] - before.get("challenges", 0) == 1
    assert d["token:client_credentials"] - before.get("token:client_credentials", 0) == 1
    token = server.token()
    server.control("expire-tokens", {})
    status, headers, body = server.vault_call("GET", f"/keys/{key.name}", token=token)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer authorization=")
    assert body == {"error": {"code": "Unauthorized", "message": "[TokenExpired] Error validating token: 'S2S12086'."}}


def test_sdk_with_msal_cached_token_fails_after_server_side_expiry(server):
    # What Microsoft's stack really does: the challenge makes the policy ask the credential again, MSAL's cache
    # hands back the same (still "valid") token, the retry gets 401 again, and the caller sees it.
    client = server.key_client()
    key = client.create_ec_key(name(), curve="P-256K")
    server.control("expire-tokens", {})
    with pytest.raises(ClientAuthenticationError) as e:
        client.get_key(key.name)
    assert e.value.status_code == 401 and "[TokenExpired]" in e.value.message


def test_short_token_lifetime_real_expiry(start_server):
    s = start_server("--token-lifetime-s", "1")
    token = s.token()
    client = s.key_client()
    key = client.create_ec_key(name(), curve="P-256K")
    time.sleep(1.1)
    status, _, body = s.vault_call("GET", f"/keys/{key.name}", token=token)
    assert status == 401 and "[TokenExpired]" in body["error"]["message"]
    before = s.stats()["tokenRequests"]["client_credentials"]
    client.get_key(key.name)  # a token this close to expiry is refreshed by the SDK before use
    assert s.stats()["tokenRequests"]["client_credentials"] == before + 1


# --- managed identity (IMDS) --------------------------------------------------------------------------------------

MI_ENV = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT",
          "MSI_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZUREPS_HOST_ENVIRONMENT")


def test_managed_identity_credential(server, delta, monkeypatch):
    for var in MI_ENV:
        monkeypatch.delenv(var, raising=False)
    # azure-identity (ImdsCredential) and MSAL (_obtain_token_on_azure_vm) both read this instead of 169.254.169.254.
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", server.imds)
    key = server.key_client().create_ec_key(name(), curve="P-256K")
    client = server.key_client(ManagedIdentityCredential())
    assert client.get_key(key.name).id == key.id
    result = server.crypto_client(key.id, ManagedIdentityCredential()).sign(SignatureAlgorithm.es256_k, b"\4" * 32)
    verify_rs(public_key(key.key), b"\4" * 32, result.signature)
    assert delta()["token:imds"] >= 1


def test_imds_wire_format(server, start_server):
    path = "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"
    status, _, body = server.raw("GET", path, base=server.imds)
    assert status == 400 and body == {"error": "invalid_request",
                                      "error_description": "Required metadata header not specified"}
    status, _, body = server.raw("GET", path, base=server.imds, headers={"Metadata": "true"})
    assert status == 200
    assert set(body) == {"access_token", "client_id", "expires_in", "expires_on", "ext_expires_in", "not_before",
                         "resource", "token_type"}
    assert body["resource"] == "https://vault.azure.net" and body["token_type"] == "Bearer"
    assert body["expires_in"] == "3600" and all(isinstance(v, str) for v in body.values())
    assert server.vault_call("GET", "/keys", token=body["access_token"])[0] == 200
    status, _, body = server.raw("GET", path + "&client_id=someone", base=server.imds, headers={"Metadata": "true"})
    assert status == 400 and body["error_description"] == "Identity not found"
    # a user-assigned identity
    s = start_server("--imds-client-id", "11111111-2222-3333-4444-555555555555")
    status, _, body = s.raw("GET", path + "&client_id=11111111-2222-3333-4444-555555555555", base=s.imds,
                            headers={"Metadata": "true"})
    assert status == 200 and body["client_id"] == "11111111-2222-3333-4444-555555555555"
    # a token for another resource is refused by the vault (audience)
    arm = path.replace("resource=https://vault.azure.net", "resource=https://management.azure.com/")
    status, _, body = s.raw("GET", arm, base=s.imds, headers={"Metadata": "true"})
    status, _, err = s.vault_call("GET", "/keys", token=body["access_token"])
    assert status == 401 and err["error"]["message"].startswith("AKV10022: Invalid audience.")


# --- setup_keys.py -------------------------------------------------------------------------------------------------

def test_setup_keys_create_import_disable_enable_delete(server):
    conn = ["--vault", server.vault, "--ca", server.ca, "--tenant", TENANT, "--client-id", CLIENT_ID,
            "--client-secret", CLIENT_SECRET]
    private = ec.generate_private_key(ec.SECP256K1())
    d = private.private_numbers().private_value.to_bytes(32, "big").hex()
    prefix = name("setup")
    out = json.loads(run_tool("setup_keys.py", *conn, "--count", "3", "--prefix", prefix, "--private-key", d).stdout)
    keys = out["keys"]
    assert [k["name"] for k in keys] == [f"{prefix}-{i}" for i in range(3)]
    numbers = private.public_key().public_numbers()
    x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
    assert keys[0]["address"] == address(x, y) and keys[0]["publicKey"] == "04" + x.hex() + y.hex()
    client = server.key_client()
    for k in keys:
        assert re.fullmatch(r"0x[0-9a-f]{40}", k["address"])
        assert k["kid"] == f"{server.vault}/keys/{k['name']}/{k['version']}"
        got = client.get_key(k["name"])
        assert got.id == k["kid"] and address(got.key.x, got.key.y) == k["address"]
    victim = keys[1]["name"]
    out = json.loads(run_tool("setup_keys.py", "disable", *conn, "--name", victim).stdout)
    assert out == {"name": victim, "version": keys[1]["version"], "enabled": False}
    with pytest.raises(HttpResponseError) as e:
        server.crypto_client(keys[1]["kid"]).sign(SignatureAlgorithm.es256_k, b"\5" * 32)
    assert e.value.status_code == 403
    assert json.loads(run_tool("setup_keys.py", "enable", *conn, "--name", victim).stdout)["enabled"] is True
    server.crypto_client(keys[1]["kid"]).sign(SignatureAlgorithm.es256_k, b"\5" * 32)
    out = json.loads(run_tool("setup_keys.py", "delete", *conn, "--name", victim).stdout)
    assert out == {"name": victim, "deleted": True, "purged": False}
    with pytest.raises(ResourceNotFoundError):
        client.get_key(victim)
    proc = run_tool("setup_keys.py", "delete", *conn, "--name", victim, check=False)
    assert proc.returncode == 1 and "KeyNotFound" in proc.stderr
    proc = run_tool("setup_keys.py", *conn, "--client-secret", "wrong", "--prefix", name(), check=False)
    assert proc.returncode == 1 and "AADSTS7000215" in proc.stderr
