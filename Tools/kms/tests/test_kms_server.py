"""kms_server.py, setup_keys.py and sigv4_vectors.py, run as the Swift tests run them: as subprocesses, over HTTP."""

import base64
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from Crypto.Hash import keccak
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from conftest import REGION, ROOT, SIGN_LATENCY_MS, KmsServer, run_tool, swift_style_sign

DIGEST_ARGS = {"MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"}
AUTH_ERRORS = {"IncompleteSignature", "IncompleteSignatureException", "UnrecognizedClientException",
               "InvalidSignatureException", "SignatureDoesNotMatch", "InvalidClientTokenId", "AccessDeniedException"}


def error_code(exc_info):
    return exc_info.value.response["Error"]["Code"], exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def public_key(kms, key_id):
    return serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])


def address_of(uncompressed_point_hex):
    point = bytes.fromhex(uncompressed_point_hex)
    return "0x" + keccak.new(digest_bits=256, data=point[1:]).digest()[12:].hex()


# --- startup -----------------------------------------------------------------------------------------------------

def test_ready_line_and_startup(server):
    assert re.fullmatch(r"kms listening on http://127\.0\.0\.1:(\d+)\n", server.ready_line)
    assert 0 < server.port < 65536
    assert server.startup_s < 30
    assert server.proc.poll() is None


def test_unsigned_and_unknown_operations_answer_json_400(server):
    status, headers, body = server.raw("ListKeys", {}, sign=False)
    assert status == 400
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert json.loads(body)["__type"] == "MissingAuthenticationTokenException"
    status, headers, body = server.raw("Frobnicate", {})
    assert status == 400
    assert json.loads(body)["__type"] == "UnknownOperationException"


def test_bad_arguments():
    proc = run_tool("kms_server.py", "--enforce-auth", "-1", check=False)
    assert proc.returncode == 2 and "--enforce-auth" in proc.stderr
    proc = run_tool("setup_keys.py", "--count", "1", check=False)
    assert proc.returncode == 2 and "--endpoint" in proc.stderr


# --- setup_keys ---------------------------------------------------------------------------------------------------

def test_free_requests(free_requests):
    assert run_tool("setup_keys.py", "--free-requests").stdout == f"{free_requests}\n"
    assert free_requests == 3


def test_keccak_address_known_vector():
    # private key 1: the generator point; its address is well known.
    g = ec.derive_private_key(1, ec.SECP256K1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert address_of(g.hex()) == "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
    sys.path.insert(0, ROOT)
    try:
        import setup_keys
        assert setup_keys.eth_address(g) == "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf"
    finally:
        sys.path.remove(ROOT)


def test_setup_keys_output(server):
    out = server.setup
    assert set(out) == {"accessKeyId", "secretAccessKey", "region", "user", "keys"}
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", out["accessKeyId"])
    assert len(out["secretAccessKey"]) == 40
    assert out["region"] == REGION
    assert out["user"].startswith("kms-test-")
    assert len(out["keys"]) == 3
    kms = server.kms()
    for i, key in enumerate(out["keys"]):
        assert set(key) == {"keyId", "arn", "alias", "address", "publicKey"}
        assert str(uuid.UUID(key["keyId"])) == key["keyId"]
        assert key["arn"] == f"arn:aws:kms:{REGION}:123456789012:key/{key['keyId']}"
        assert key["alias"] == f"alias/gateway-test-{i}"
        assert re.fullmatch(r"04[0-9a-f]{128}", key["publicKey"])
        assert re.fullmatch(r"0x[0-9a-f]{40}", key["address"])
        assert key["address"] == address_of(key["publicKey"])
        # The point is the one KMS answers, on secp256k1.
        pub = public_key(kms, key["keyId"])
        assert isinstance(pub.curve, ec.SECP256K1)
        assert pub.public_bytes(serialization.Encoding.X962,
                                serialization.PublicFormat.UncompressedPoint).hex() == key["publicKey"]
    assert len({k["address"] for k in out["keys"]}) == 3


def test_get_public_key_answers_like_aws(server):
    key = server.setup["keys"][0]
    answer = server.kms().get_public_key(KeyId=key["alias"])
    assert answer["KeyId"] == key["arn"]
    assert answer["KeySpec"] == "ECC_SECG_P256K1"
    assert answer["KeyUsage"] == "SIGN_VERIFY"
    assert answer["SigningAlgorithms"] == ["ECDSA_SHA_256"]
    assert "EncryptionAlgorithms" not in answer


# --- Sign ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reference", ["keyId", "arn", "alias"])
def test_sign_digest_is_prehashed(server, reference):
    key = server.setup["keys"][0]
    kms = server.kms()
    digest = hashlib.sha256(os.urandom(64)).digest()
    answer = kms.sign(KeyId=key[reference], Message=digest, **DIGEST_ARGS)
    assert answer["KeyId"] == key["arn"]
    assert answer["SigningAlgorithm"] == "ECDSA_SHA_256"
    signature = answer["Signature"]
    pub = public_key(kms, key["keyId"])
    pub.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    # Not a signature over sha256(digest), which is what stock moto makes.
    with pytest.raises(InvalidSignature):
        pub.verify(signature, digest, ec.ECDSA(hashes.SHA256()))
    assert kms.verify(KeyId=key["keyId"], Message=digest, Signature=signature, **DIGEST_ARGS)["SignatureValid"]


def test_verify_refuses_a_wrong_signature(server):
    key = server.setup["keys"][0]
    kms = server.kms()
    digest = os.urandom(32)
    signature = kms.sign(KeyId=key["keyId"], Message=digest, **DIGEST_ARGS)["Signature"]
    with pytest.raises(ClientError) as e:
        kms.verify(KeyId=key["keyId"], Message=bytes(32), Signature=signature, **DIGEST_ARGS)
    assert error_code(e)[0] == "KMSInvalidSignatureException"


@pytest.mark.parametrize("length", [1, 20, 31, 33, 64])
def test_wrong_length_digest_is_a_validation_error(server, length):
    with pytest.raises(ClientError) as e:
        server.kms().sign(KeyId=server.setup["keys"][0]["keyId"], Message=os.urandom(length), **DIGEST_ARGS)
    assert error_code(e) == ("ValidationException", 400)


def test_unknown_key_is_not_found(server):
    kms = server.kms()
    for key_id in ("alias/no-such-key", str(uuid.uuid4())):
        with pytest.raises(ClientError) as e:
            kms.sign(KeyId=key_id, Message=os.urandom(32), **DIGEST_ARGS)
        assert error_code(e) == ("NotFoundException", 400)


def test_raw_swift_style_request(server):
    """POST / signed by the conftest port of the Swift signer: 200 with x-amz-json-1.1; an error is KMS's JSON."""
    key = server.setup["keys"][1]
    digest = os.urandom(32)
    status, headers, body = server.raw("Sign", {"KeyId": key["alias"], "Message": base64.b64encode(digest).decode(),
                                                **DIGEST_ARGS})
    assert status == 200, body
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    der = base64.b64decode(json.loads(body)["Signature"])
    public_key(server.kms(), key["keyId"]).verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    status, headers, body = server.raw("Sign", {"KeyId": key["alias"], "Message": base64.b64encode(b"x").decode(),
                                                **DIGEST_ARGS})
    assert status == 400
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    error = json.loads(body)
    assert set(error) == {"__type", "message"} and error["__type"] == "ValidationException"


# --- auth ---------------------------------------------------------------------------------------------------------

def test_wrong_secret_is_refused(server):
    secret = server.setup["secretAccessKey"]
    wrong = ("A" if secret[0] != "A" else "B") + secret[1:]
    with pytest.raises(ClientError) as e:
        server.kms(secret=wrong).sign(KeyId=server.setup["keys"][0]["keyId"], Message=os.urandom(32), **DIGEST_ARGS)
    code, status = error_code(e)
    assert 400 <= status < 500
    # moto answers XML 403 <Code>SignatureDoesNotMatch</Code> (AWS: InvalidSignatureException); boto3 shows the status.
    body = e.value.response["Error"]["Message"]
    assert code in AUTH_ERRORS or any(name in body for name in AUTH_ERRORS), e.value.response
    status, _, body = server.raw("ListKeys", {}, secret=wrong)
    assert 400 <= status < 500 and any(name.encode() in body for name in AUTH_ERRORS), body


def test_unknown_access_key_is_refused(server):
    with pytest.raises(ClientError) as e:
        server.kms(access_key="AKIAAAAAAAAAAAAAAAAA").list_keys()
    code, status = error_code(e)
    assert 400 <= status < 500
    assert code in AUTH_ERRORS or any(name in e.value.response["Error"]["Message"] for name in AUTH_ERRORS)


def test_right_secret_works(server):
    keys = server.kms().list_keys(Limit=1000)["Keys"]
    assert {k["keyId"] for k in server.setup["keys"]} <= {k["KeyId"] for k in keys}


# --- disabled keys ------------------------------------------------------------------------------------------------

def set_enabled(server, key, enabled):
    out = run_tool("setup_keys.py", "enable" if enabled else "disable", "--endpoint", server.url, "--key-id",
                   key["keyId"], "--access-key-id", server.setup["accessKeyId"], "--secret-access-key",
                   server.setup["secretAccessKey"], "--region", REGION).stdout
    assert json.loads(out) == {"keyId": key["keyId"], "keyState": "Enabled" if enabled else "Disabled"}


def test_disabled_key_is_refused_until_enabled(server):
    kms = server.kms()
    key, other = server.setup["keys"][2], server.setup["keys"][0]
    set_enabled(server, key, False)
    try:
        assert kms.describe_key(KeyId=key["keyId"])["KeyMetadata"]["KeyState"] == "Disabled"
        for reference in (key["keyId"], key["alias"]):
            with pytest.raises(ClientError) as e:
                kms.sign(KeyId=reference, Message=os.urandom(32), **DIGEST_ARGS)
            assert error_code(e) == ("DisabledException", 400)
            assert "disabled" in e.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as e:
            kms.get_public_key(KeyId=key["keyId"])
        assert error_code(e) == ("DisabledException", 400)
        kms.sign(KeyId=other["keyId"], Message=os.urandom(32), **DIGEST_ARGS)
    finally:
        set_enabled(server, key, True)
    digest = os.urandom(32)
    signature = kms.sign(KeyId=key["alias"], Message=digest, **DIGEST_ARGS)["Signature"]
    public_key(kms, key["keyId"]).verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))


# --- latency and shutdown -----------------------------------------------------------------------------------------

def test_sign_latency(slow_server):
    kms = slow_server.kms(pool=10)
    key_id = slow_server.setup["keys"][0]["keyId"]

    def sign(_):
        return kms.sign(KeyId=key_id, Message=os.urandom(32), **DIGEST_ARGS)

    kms.list_keys()  # connection warm; not delayed
    t0 = time.monotonic()
    sign(0)
    assert time.monotonic() - t0 >= SIGN_LATENCY_MS / 1000
    t0 = time.monotonic()
    kms.get_public_key(KeyId=key_id)
    assert time.monotonic() - t0 < SIGN_LATENCY_MS / 1000
    # Concurrent Signs overlap: 10 in series would take >= 10 * latency.
    with ThreadPoolExecutor(10) as pool:
        t0 = time.monotonic()
        list(pool.map(sign, range(10)))
        elapsed = time.monotonic() - t0
    assert SIGN_LATENCY_MS / 1000 <= elapsed < 10 * SIGN_LATENCY_MS / 1000 * 0.75


@pytest.mark.parametrize("blocked", [False, True], ids=["plain", "sigterm-blocked-in-parent"])
def test_sigterm_exits_promptly_with_requests_in_flight(blocked):
    """A Sign sleeping 10 s is in flight; SIGTERM still ends the server at once, with code 0. With SIGTERM blocked
    in the mask the server inherits (as from a Swift Dispatch thread), too."""
    popen_args = {"preexec_fn": lambda: signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})} if blocked else {}
    s = KmsServer("--sign-latency-ms", "10000", **popen_args)
    try:
        # Auth is not enforced: any credentials; the latency comes before the key lookup.
        kms = boto3.client("kms", endpoint_url=s.url, region_name=REGION, aws_access_key_id="testing",
                           aws_secret_access_key="testing",
                           config=Config(retries={"total_max_attempts": 1}, read_timeout=30))
        outcome = []

        def in_flight():
            try:
                kms.sign(KeyId="alias/none", Message=os.urandom(32), **DIGEST_ARGS)
                outcome.append("answered")
            except Exception as e:  # the connection drops: EndpointConnectionError or similar
                outcome.append(type(e).__name__)

        thread = threading.Thread(target=in_flight, daemon=True)
        thread.start()
        time.sleep(0.5)
        assert not outcome  # still sleeping in the server
        t0 = time.monotonic()
        os.kill(s.proc.pid, signal.SIGTERM)
        rc = s.proc.wait(timeout=5)
        assert time.monotonic() - t0 < 2
        assert rc == 0, s.stderr_text()
        thread.join(timeout=5)
        assert outcome and outcome[0] != "answered"
    finally:
        s.stop(signal.SIGKILL)


# --- sigv4_vectors ------------------------------------------------------------------------------------------------

VECTOR_FIELDS = {"method", "path", "query", "headers", "body_b64", "date", "region", "service", "access_key",
                 "secret_key", "session_token", "expected"}
EXPECTED_FIELDS = {"authorization", "x-amz-date", "x-amz-security-token", "canonical_path", "canonical_query",
                   "signed_headers", "canonical_request", "string_to_sign"}


@pytest.fixture(scope="module")
def vectors():
    out = run_tool("sigv4_vectors.py", "--count", "300").stdout
    assert run_tool("sigv4_vectors.py", "--count", "300").stdout == out
    return out


def test_sigv4_vectors_are_deterministic(vectors):
    assert vectors.endswith("\n") and len(vectors.splitlines()) == 300
    assert run_tool("sigv4_vectors.py", "--count", "300", "--seed", "1").stdout == vectors
    other = run_tool("sigv4_vectors.py", "--count", "300", "--seed", "2").stdout
    assert other != vectors and len(other.splitlines()) == 300
    assert len(run_tool("sigv4_vectors.py").stdout.splitlines()) == 100
    assert vectors.isascii()


def test_sigv4_vector_fields(vectors):
    lines = [json.loads(line) for line in vectors.splitlines()]
    with_token = with_query = with_body = 0
    for v in lines:
        assert set(v) == VECTOR_FIELDS
        assert set(v["expected"]) == EXPECTED_FIELDS
        e = v["expected"]
        assert v["method"] in ("GET", "POST")
        assert v["path"].startswith("/")
        assert all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in v["query"])
        assert v["headers"] and v["headers"][0][0].lower() == "host"
        assert len({n.lower() for n, _ in v["headers"]}) == len(v["headers"])
        body = base64.b64decode(v["body_b64"], validate=True)
        assert re.fullmatch(r"\d{8}T\d{6}Z", v["date"]) and e["x-amz-date"] == v["date"]
        assert (e["x-amz-security-token"] is None) == (v["session_token"] is None)
        assert e["x-amz-security-token"] in (None, v["session_token"])
        scope = f"{v['date'][:8]}/{v['region']}/{v['service']}/aws4_request"
        assert re.fullmatch(rf"AWS4-HMAC-SHA256 Credential={re.escape(v['access_key'])}/{re.escape(scope)}, "
                            rf"SignedHeaders={re.escape(e['signed_headers'])}, Signature=[0-9a-f]{{64}}",
                            e["authorization"])
        creq = e["canonical_request"].split("\n")
        assert creq[:3] == [v["method"], e["canonical_path"], e["canonical_query"]]
        assert creq[-2] == e["signed_headers"] and creq[-1] == hashlib.sha256(body).hexdigest()
        assert e["string_to_sign"].split("\n") == [
            "AWS4-HMAC-SHA256", v["date"], scope, hashlib.sha256(e["canonical_request"].encode()).hexdigest()]
        with_token += v["session_token"] is not None
        with_query += bool(v["query"])
        with_body += bool(body)
    assert with_token and with_token < len(lines)
    assert with_query and with_body


def test_sigv4_vectors_match_the_swift_style_signer(vectors):
    """The conftest port of the Swift signer, given canonical path/query and the raw headers, signs as botocore."""
    for line in vectors.splitlines():
        v = json.loads(line)
        e = v["expected"]
        added = dict(swift_style_sign(v["access_key"], v["secret_key"], v["session_token"], v["region"],
                                      v["service"], v["method"], e["canonical_path"], e["canonical_query"],
                                      [tuple(h) for h in v["headers"]], base64.b64decode(v["body_b64"]), v["date"]))
        assert added["Authorization"] == e["authorization"], line
        assert added["X-Amz-Date"] == e["x-amz-date"]
        assert added.get("X-Amz-Security-Token") == e["x-amz-security-token"]
