#!/usr/bin/env python3
"""azure_server: a local double of Azure Key Vault (REST api-version 7.4, EC keys), of the Microsoft Entra ID
token endpoint (client credentials) and of the managed-identity endpoint (IMDS), for SignerGateway's Azure
backend tests. Stdlib http.server + ssl, keys and certificates from `cryptography`. Run with
Tools/azure/.venv/bin/python (see install.sh).

  azure_server.py [--host 127.0.0.1] [--port 0] [--imds-port 0] --cert-dir DIR --tenant T --client-id ID
                  --client-secret S [--imds-client-id ID] [--token-lifetime-s 3600] [--sign-latency-ms MS]
                  [--log-requests]

One HTTPS port (TLS 1.2+) serves the vault (https://127.0.0.1:PORT/keys/...), the authority
(https://127.0.0.1:PORT/{tenant}/oauth2/v2.0/token and .../v2.0/.well-known/openid-configuration) and the
test-only /_control/ endpoints. A second, plain-HTTP port serves IMDS (/metadata/identity/oauth2/token).
At start, DIR gets ca.pem (a test CA) and server.pem / server-key.pem (127.0.0.1, ::1, localhost), unless valid
ones are already there. Once both sockets accept, exactly one JSON line goes to stdout (flushed):

  {"vault": "https://127.0.0.1:PORT", "authority": "https://127.0.0.1:PORT", "imds": "http://127.0.0.1:PORT2",
   "ca": "/abs/DIR/ca.pem"}

SIGTERM / SIGINT exit at once with code 0, even with requests in flight. No child processes.
README.md lists the routes, the error bodies and where this differs from Azure.
"""

import argparse
import base64
import binascii
import datetime
import fcntl
import hmac
import ipaddress
import json
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

# servertools (Tools/shared, stdlib only): the signal, TLS and ready-line helpers every tool's server shares.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shared"))
import servertools  # noqa: E402

VAULT_RESOURCE = "https://vault.azure.net"
API_VERSIONS = {"7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01"}
MAX_RESULTS = 25  # Key Vault's page-size limit for list operations
RECOVERABLE_DAYS = 90
VALID_OPS = {"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"}

# crv -> (cryptography curve, JWS alg, coordinate length, digest length, hash for Prehashed); filled on first use
CURVES = {}


def curves():
    if not CURVES:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        CURVES.update({
            "P-256": (ec.SECP256R1(), "ES256", 32, 32, hashes.SHA256()),
            "P-256K": (ec.SECP256K1(), "ES256K", 32, 32, hashes.SHA256()),
            "P-384": (ec.SECP384R1(), "ES384", 48, 48, hashes.SHA384()),
            "P-521": (ec.SECP521R1(), "ES512", 66, 64, hashes.SHA512()),
        })
    return CURVES


def parse(argv=None):
    p = argparse.ArgumentParser(description="local Azure Key Vault + Entra ID + IMDS double for tests")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--imds-port", type=int, default=0)
    p.add_argument("--cert-dir", required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--imds-client-id", default=None,
                   help="the machine has this user-assigned identity (default: a system-assigned one)")
    p.add_argument("--token-lifetime-s", type=int, default=3600)
    p.add_argument("--sign-latency-ms", type=float, default=0.0)
    p.add_argument("--log-requests", action="store_true")
    args = p.parse_args(argv)
    if args.token_lifetime_s < 1:
        p.error("--token-lifetime-s must be >= 1")
    if args.sign_latency_ms < 0:
        p.error("--sign-latency-ms must be >= 0")
    if not re.fullmatch(r"[0-9A-Za-z.-]{1,100}", args.tenant):
        p.error("--tenant: letters, digits, '.' and '-' only")
    return args


# ---------------------------------------------------------------------------------------------------------------
# certificates

def ensure_certs(cert_dir):
    """ca.pem, server.pem, server-key.pem in cert_dir, reused while valid for more than a day (under flock, so
    concurrent starts sharing a dir do not race). Returns absolute paths (ca, cert, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    cert_dir = os.path.abspath(cert_dir)
    os.makedirs(cert_dir, exist_ok=True)
    ca_path, cert_path, key_path = (os.path.join(cert_dir, n) for n in ("ca.pem", "server.pem", "server-key.pem"))
    now = datetime.datetime.now(datetime.timezone.utc)

    def still_good():
        try:
            with open(ca_path, "rb") as f:
                ca = x509.load_pem_x509_certificate(f.read())
            with open(cert_path, "rb") as f:
                cert = x509.load_pem_x509_certificate(f.read())
            with open(key_path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), None)
            cert.verify_directly_issued_by(ca)
            soon = now + datetime.timedelta(days=1)
            return (cert.not_valid_after_utc > soon and ca.not_valid_after_utc > soon
                    and key.public_key().public_numbers() == cert.public_key().public_numbers())
        except Exception:  # missing, unreadable or not matching: make new ones
            return False

    def write(path, data, mode):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def key_usage(ca):
        return x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca, content_commitment=False,
                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                             encipher_only=False, decipher_only=False)

    with open(os.path.join(cert_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if still_good():
            return ca_path, cert_path, key_path
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SignerGateway azure_server test CA"),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SignerGateway tests")])
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=730))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(key_usage(True), critical=True)
              .add_extension(ca_ski, critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        # 365 days: under Apple's 825-day limit for TLS server certificates, so URLSession on macOS accepts it.
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=365))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(key_usage(False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        write(key_path, key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
        write(cert_path, cert.public_bytes(pem), 0o644)
        write(ca_path, ca.public_bytes(pem), 0o644)
        return ca_path, cert_path, key_path


# ---------------------------------------------------------------------------------------------------------------
# helpers

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text):
    """base64url, padding optional. Raises ValueError."""
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", text):
        raise ValueError("not base64url")
    text = text.rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as e:
        raise ValueError(str(e)) from None


class HttpError(Exception):
    def __init__(self, status, body, headers=()):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, list(headers)


def kv_error(status, code, message, inner=None, headers=()):
    """Key Vault's error body: {"error": {"code", "message"[, "innererror": {"code"}]}}."""
    err = {"code": code, "message": message}
    if inner:
        err["innererror"] = {"code": inner}
    return HttpError(status, {"error": err}, headers)


def key_not_found(name, version=""):
    ident = f"{name}/{version}" if version else name
    return kv_error(404, "KeyNotFound",
                    f"A key with (name/id) {ident} was not found in this key vault. If you recently deleted this key "
                    "you may be able to recover it using the correct recovery command. For help resolving this issue, "
                    "please see https://go.microsoft.com/fwlink/?linkid=2125182")


def bad_parameter(message):
    return kv_error(400, "BadParameter", message)


def aad_error(status, error, code, description):
    """Entra ID's OAuth error body (AADSTS codes)."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    return HttpError(status, {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {corr} Timestamp: {now}",
        "error_codes": [code], "timestamp": now, "trace_id": trace, "correlation_id": corr,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}"})


def check_name(name):
    if not re.fullmatch(r"[0-9A-Za-z-]{1,127}", name):
        raise bad_parameter(f"The request URI contains an invalid name: {name}")


def check_ops(ops):
    if ops is None:
        return ["sign", "verify"]
    if not isinstance(ops, list) or any(op not in VALID_OPS for op in ops):
        raise bad_parameter(f"Invalid key_ops: {ops!r}")
    return list(ops)


# ---------------------------------------------------------------------------------------------------------------
# state

class KeyVersion:
    def __init__(self, version, private_key, kty, crv, key_ops, attributes, tags):
        now = int(time.time())
        self.version, self.private_key, self.kty, self.crv = version, private_key, kty, crv
        self.key_ops = list(key_ops)
        self.enabled = attributes.get("enabled", True) is not False
        self.nbf, self.exp = attributes.get("nbf"), attributes.get("exp")
        self.exportable = bool(attributes.get("exportable", False))
        self.created = self.updated = now
        self.tags = dict(tags or {})

    def attributes(self):
        a = {"enabled": self.enabled}
        if self.nbf is not None:
            a["nbf"] = self.nbf
        if self.exp is not None:
            a["exp"] = self.exp
        a.update({"created": self.created, "updated": self.updated, "recoveryLevel": "Recoverable+Purgeable",
                  "recoverableDays": RECOVERABLE_DAYS, "exportable": self.exportable})
        return a


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.keys = {}      # lower-case name -> (name, [KeyVersion, ...] oldest first)
        self.deleted = {}   # lower-case name -> (name, [KeyVersion, ...], deletedDate)
        self.tokens = {}    # access token -> {"expires": epoch s, "resource": str}
        self.faults = deque()
        self.sign_latency_s = args.sign_latency_ms / 1000.0
        self.signs_in_flight = 0
        self.reset_stats()

    def reset_stats(self):
        self.stats = {"tokenRequests": {"client_credentials": 0, "imds": 0}, "tokenErrors": 0, "vaultRequests": 0,
                      "challenges": 0, "throttled": 0, "failed": 0, "signRequests": 0, "signs": 0,
                      "maxConcurrentSigns": 0}

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def issue_token(self, resource, kind):
        token = secrets.token_urlsafe(48)
        lifetime = self.args.token_lifetime_s
        with self.lock:
            now = time.time()
            for t in [t for t, v in self.tokens.items() if v["expires"] < now - 3600]:
                del self.tokens[t]  # keep the table small; a long-dead token is "unknown" instead of "expired"
            self.tokens[token] = {"expires": now + lifetime, "resource": resource.rstrip("/")}
            self.stats["tokenRequests"][kind] += 1
        return token, lifetime


# ---------------------------------------------------------------------------------------------------------------
# HTTP plumbing

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "azure_server"
    sys_version = ""
    timeout = 120  # idle keep-alive connections

    @property
    def state(self):
        return self.server.state  # the one State that both servers (HTTPS, IMDS) share

    def log_message(self, fmt, *a):
        if self.state.args.log_requests:
            sys.stderr.write(f"azure: {self.address_string()} {fmt % a}\n")

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        if self.headers.get("x-ms-client-request-id"):
            self.send_header("x-ms-client-request-id", self.headers["x-ms-client-request-id"])
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self):
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return self.send(400, {"error": {"code": "BadRequest", "message": "unreadable request body"}})
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            status, answer, headers = self.route(url.path, query, body)
        except HttpError as e:
            status, answer, headers = e.status, e.body, e.headers
        except Exception as e:  # a bug here: answer 500 rather than drop the connection
            sys.stderr.write(f"azure: internal error on {self.command} {self.path}: {e!r}\n")
            status, answer, headers = 500, {"error": {"code": "InternalServerError", "message": repr(e)}}, []
        self.send(status, answer, headers)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


class TLSServer(ThreadingHTTPServer):
    """One thread per connection; the TLS handshake runs in that thread, not in the accept loop."""
    daemon_threads = True
    request_queue_size = 256  # many concurrent clients (e.g. 200 parallel signs) without SYN drops

    def __init__(self, addr, handler, state, context):
        self.state, self.ssl_context = state, context
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        request.settimeout(30)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            tls.settimeout(Handler.timeout)
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class PlainServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, addr, handler, state):
        self.state = state
        super().__init__(addr, handler)


# ---------------------------------------------------------------------------------------------------------------
# the HTTPS port: authority, vault, control

class MainHandler(Handler):
    @property
    def base(self):
        return self.server.base_url

    def route(self, path, query, body):
        if path.startswith("/_control/"):
            return self.control(path, body)
        parts = path.split("/")[1:]
        if parts and parts[0] in ("keys", "deletedkeys"):
            return self.vault(parts, query, body)
        m = re.fullmatch(r"/([^/]+)/v2\.0/\.well-known/openid-configuration", path)
        if m and self.command == "GET":
            return self.openid_configuration(m.group(1))
        m = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/token", path)
        if m and self.command == "POST":
            return self.token(m.group(1), body)
        raise HttpError(404, {"error": {"code": "NotFound", "message": f"No route for {self.command} {path}"}})

    # --- authority (Entra ID) --------------------------------------------------------------------------------

    def check_tenant(self, tenant, error):
        if tenant.lower() != self.state.args.tenant.lower():
            raise aad_error(400, error, 90002, f"Tenant '{tenant}' not found. Check to make sure you have the "
                                               "correct tenant ID and are signing into the correct cloud.")

    def openid_configuration(self, tenant):
        self.check_tenant(tenant, "invalid_tenant")
        a = f"{self.base}/{self.state.args.tenant}"
        return 200, {
            "token_endpoint": f"{a}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{a}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{a}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{a}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{a}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{a}/oauth2/v2.0/logout",
            "tenant_region_scope": "NA", "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net", "msgraph_host": "graph.microsoft.com",
        }, []

    def token(self, tenant, body):
        st, args = self.state, self.state.args
        try:
            self.check_tenant(tenant, "invalid_request")
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
            client_id, secret = form.get("client_id"), form.get("client_secret")
            auth = self.headers.get("Authorization", "")
            if auth.lower().startswith("basic "):  # client_secret_basic
                try:
                    user, _, pw = base64.b64decode(auth[6:].strip()).decode().partition(":")
                    client_id, secret = unquote(user), unquote(pw)
                except (binascii.Error, UnicodeDecodeError):
                    raise aad_error(401, "invalid_client", 7000218, "Malformed HTTP Basic authorization header.")
            grant = form.get("grant_type")
            if not grant:
                raise aad_error(400, "invalid_request", 900144,
                                "The request body must contain the following parameter: 'grant_type'.")
            if grant != "client_credentials":
                raise aad_error(400, "unsupported_grant_type", 70003,
                                f"The app requested an unsupported grant type '{grant}'.")
            if not client_id:
                raise aad_error(400, "invalid_request", 900144,
                                "The request body must contain the following parameter: 'client_id'.")
            if client_id != args.client_id:
                raise aad_error(400, "unauthorized_client", 700016,
                                f"Application with identifier '{client_id}' was not found in the directory "
                                f"'{args.tenant}'. This can happen if the application has not been installed by the "
                                "administrator of the tenant or consented to by any user in the tenant. You may "
                                "have sent your authentication request to the wrong tenant.")
            if not secret:
                raise aad_error(401, "invalid_client", 7000218,
                                "The request body must contain the following parameter: 'client_assertion' or "
                                "'client_secret'.")
            if not hmac.compare_digest(secret.encode(), args.client_secret.encode()):
                raise aad_error(401, "invalid_client", 7000215,
                                "Invalid client secret provided. Ensure the secret being sent in the request is the "
                                "client secret value, not the client secret ID, for a secret added to app "
                                f"'{args.client_id}'.")
            scope = form.get("scope", "")
            if not scope:
                raise aad_error(400, "invalid_request", 900144,
                                "The request body must contain the following parameter: 'scope'.")
            scopes = scope.split()
            if len(scopes) != 1 or not scopes[0].endswith("/.default"):
                raise aad_error(400, "invalid_scope", 1002012,
                                f"The provided value for scope {scope} is not valid. Client credential flows must "
                                "have a scope value with /.default suffixed to the resource identifier "
                                "(application ID URI).")
        except HttpError:
            st.count("tokenErrors")
            raise
        token, lifetime = st.issue_token(scopes[0][: -len("/.default")], "client_credentials")
        return 200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                     "access_token": token}, []

    # --- control ---------------------------------------------------------------------------------------------

    def control(self, path, body):
        st = self.state
        try:
            req = json.loads(body) if body.strip() else {}
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError as e:
            raise HttpError(400, {"error": f"body is not a JSON object: {e}"})

        def number(name, default, lo, hi):
            v = req.get(name, default)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise HttpError(400, {"error": f"'{name}' must be a number in [{lo}, {hi}]"})
            return v

        op = path[len("/_control/"):]
        if op == "stats" and self.command == "GET":
            with st.lock:
                out = json.loads(json.dumps(st.stats))
                out["pendingFaults"] = len(st.faults)
            return 200, out, []
        if self.command != "POST":
            raise HttpError(404, {"error": f"no control endpoint {self.command} {path}"})
        if op == "throttle":
            count, retry = int(number("count", 1, 0, 100000)), int(number("retryAfter", 1, 0, 3600))
            with st.lock:
                st.faults.extend([("throttle", 429, retry)] * count)
                return 200, {"pendingFaults": len(st.faults)}, []
        if op == "fail":
            count, status = int(number("count", 1, 0, 100000)), int(number("status", 503, 500, 599))
            retry = None if req.get("retryAfter") is None else int(number("retryAfter", 0, 0, 3600))
            with st.lock:
                st.faults.extend([("fail", status, retry)] * count)
                return 200, {"pendingFaults": len(st.faults)}, []
        if op == "expire-tokens":
            with st.lock:
                now = time.time()
                for v in st.tokens.values():
                    v["expires"] = min(v["expires"], now - 1)
                return 200, {"expired": len(st.tokens)}, []
        if op == "sign-latency":
            ms = number("ms", 0, 0, 600000)
            with st.lock:
                st.sign_latency_s = ms / 1000.0
            return 200, {"ms": ms}, []
        if op == "reset":
            with st.lock:
                st.faults.clear()
                st.reset_stats()
            return 200, {}, []
        raise HttpError(404, {"error": f"no control endpoint {self.command} {path}"})

    # --- vault -----------------------------------------------------------------------------------------------

    def challenge(self, message):
        self.state.count("challenges")
        auth = f'Bearer authorization="{self.base}/{self.state.args.tenant}", resource="{VAULT_RESOURCE}"'
        return kv_error(401, "Unauthorized", message, headers=[("WWW-Authenticate", auth)])

    def authenticate(self):
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise self.challenge("AKV10000: Request is missing a Bearer or PoP token.")
        with self.state.lock:
            entry = self.state.tokens.get(token)
            entry = dict(entry) if entry else None
        if entry is None:
            raise self.challenge("Error validating token: it was not issued by this authority "
                                 "(azure_server: unknown token).")
        if entry["expires"] <= time.time():
            raise self.challenge("[TokenExpired] Error validating token: 'S2S12086'.")
        if entry["resource"] != VAULT_RESOURCE:
            raise self.challenge(f"AKV10022: Invalid audience. Expected {VAULT_RESOURCE}, found: {entry['resource']}.")

    def vault(self, parts, query, body):
        st = self.state
        is_sign = self.command == "POST" and len(parts) == 4 and parts[0] == "keys" and parts[3] == "sign"
        with st.lock:
            st.stats["vaultRequests"] += 1
            if is_sign:
                st.stats["signRequests"] += 1
        self.authenticate()
        with st.lock:
            fault = st.faults.popleft() if st.faults else None
            if fault:
                st.stats["throttled" if fault[0] == "throttle" else "failed"] += 1
        if fault:
            kind, status, retry = fault
            headers = [] if retry is None else [("Retry-After", str(retry))]
            if kind == "throttle":
                raise kv_error(429, "Throttled", "Request was not processed because too many requests were "
                                                 "received. Reason: VaultRequestTypeLimitReached", headers=headers)
            code = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable",
                    504: "GatewayTimeout"}.get(status, "InternalServerError")
            raise kv_error(status, code, "The service is temporarily unavailable (azure_server injected failure).",
                           headers=headers)
        version = query.get("api-version")
        if version not in API_VERSIONS:
            raise bad_parameter(f"The specified version ({version}) is not recognized. Consider using the latest "
                                "supported version (7.4)." if version else
                                "The api-version query parameter is missing.")
        req = {}
        if body.strip():
            try:
                req = json.loads(body)
            except ValueError:
                raise bad_parameter("The request body is not valid JSON.")
            if not isinstance(req, dict):
                raise bad_parameter("The request body must be a JSON object.")
        m, n = self.command, len(parts)
        if parts[0] == "keys":
            if n == 1 and m == "GET":
                return self.list_keys(query)
            name = parts[1] if n > 1 else ""
            check_name(name)
            if n == 2 and m == "PUT":
                return self.import_key(name, req)
            if n == 2 and m == "DELETE":
                return self.delete_key(name)
            if n == 3 and m == "POST" and parts[2] == "create":
                return self.create_key(name, req)
            if n == 3 and m == "GET" and parts[2] == "versions":
                return self.list_versions(name, query)
            if n in (2, 3) and m == "GET":
                return self.get_key(name, parts[2] if n == 3 else "")
            if n in (2, 3) and m == "PATCH":
                return self.update_key(name, parts[2] if n == 3 else "", req)
            if n == 4 and m == "POST" and parts[3] == "sign":
                return self.sign(name, parts[2], req)
            if n == 4 and m == "POST" and parts[3] == "verify":
                return self.verify(name, parts[2], req)
        elif n >= 2:
            name = parts[1]
            check_name(name)
            if n == 2 and m == "GET":
                return self.get_deleted(name)
            if n == 2 and m == "DELETE":
                return self.purge(name)
            if n == 3 and m == "POST" and parts[2] == "recover":
                return self.recover(name)
        raise kv_error(404, "NotFound", f"No route for {m} /{'/'.join(parts)} (azure_server).")

    # key operations

    def kid(self, name, version=None):
        return f"{self.base}/keys/{name}" + (f"/{version}" if version else "")

    def bundle(self, name, kv):
        pub = kv.private_key.public_key().public_numbers()
        size = curves()[kv.crv][2]
        jwk = {"kid": self.kid(name, kv.version), "kty": kv.kty, "key_ops": kv.key_ops, "crv": kv.crv,
               "x": b64u(pub.x.to_bytes(size, "big")), "y": b64u(pub.y.to_bytes(size, "big"))}
        out = {"key": jwk, "attributes": kv.attributes()}
        if kv.tags:
            out["tags"] = kv.tags
        return out

    def find(self, name, version):
        """(stored name, KeyVersion); call with the state lock held."""
        entry = self.state.keys.get(name.lower())
        if entry is None:
            raise key_not_found(name, version)
        if not version:
            return entry[0], entry[1][-1]
        for kv in entry[1]:
            if kv.version == version:
                return entry[0], kv
        raise key_not_found(name, version)

    def add_version(self, name, kv):
        if name.lower() in self.state.deleted:
            raise kv_error(409, "Conflict", f"Key {name} is currently in a deleted but recoverable state, and its "
                                            "name cannot be reused; in this state, the key can only be recovered "
                                            "or purged.", inner="ObjectIsDeletedButRecoverable")
        entry = self.state.keys.setdefault(name.lower(), (name, []))
        entry[1].append(kv)
        return entry[0]

    @staticmethod
    def key_fields(req):
        attributes = req.get("attributes") or {}
        tags = req.get("tags") or {}
        if not isinstance(attributes, dict) or not isinstance(tags, dict):
            raise bad_parameter("Properties 'attributes' and 'tags' must be JSON objects.")
        return attributes, tags

    @staticmethod
    def check_kty_crv(kty, crv):
        if kty not in ("EC", "EC-HSM"):
            raise bad_parameter(f"Key type '{kty}' is not supported by azure_server (only EC and EC-HSM).")
        if crv not in curves():
            raise bad_parameter(f"Invalid curve '{crv}'. Valid values are P-256, P-256K, P-384, P-521.")

    def create_key(self, name, req):
        from cryptography.hazmat.primitives.asymmetric import ec
        kty = req.get("kty")
        if not kty:
            raise bad_parameter("Property 'kty' is required.")
        crv = req.get("crv") or "P-256"
        self.check_kty_crv(kty, crv)
        attributes, tags = self.key_fields(req)
        kv = KeyVersion(uuid.uuid4().hex, ec.generate_private_key(curves()[crv][0]), kty, crv,
                        check_ops(req.get("key_ops")), attributes, tags)
        with self.state.lock:
            name = self.add_version(name, kv)
            return 200, self.bundle(name, kv), []

    def import_key(self, name, req):
        from cryptography.hazmat.primitives.asymmetric import ec
        jwk = req.get("key")
        if not isinstance(jwk, dict):
            raise bad_parameter("Property 'key' is required.")
        kty, crv = jwk.get("kty"), jwk.get("crv")
        self.check_kty_crv(kty, crv)
        curve, _, size, _, _ = curves()[crv]
        try:
            d = unb64u(jwk.get("d") or "")
        except ValueError:
            raise bad_parameter("Property 'key.d' is not valid base64url.")
        if not d or len(d) > size:
            raise bad_parameter("Property 'key.d' is required for import and must be a private key of the curve.")
        try:
            private_key = ec.derive_private_key(int.from_bytes(d, "big"), curve)
        except ValueError:
            raise bad_parameter("Property 'key.d' is not a valid private key for the curve.")
        pub = private_key.public_key().public_numbers()
        for field, value in (("x", pub.x), ("y", pub.y)):
            if jwk.get(field) is not None:
                try:
                    given = int.from_bytes(unb64u(jwk[field]), "big")
                except ValueError:
                    given = None
                if given != value:
                    raise bad_parameter(f"Property 'key.{field}' does not match the private key.")
        hsm = req.get("Hsm") is True or kty == "EC-HSM"
        attributes, tags = self.key_fields(req)
        kv = KeyVersion(uuid.uuid4().hex, private_key, "EC-HSM" if hsm else "EC", crv, check_ops(jwk.get("key_ops")),
                        attributes, tags)
        with self.state.lock:
            name = self.add_version(name, kv)
            return 200, self.bundle(name, kv), []

    def get_key(self, name, version):
        # A disabled key is still returned (attributes.enabled false); only its private-key operations fail.
        with self.state.lock:
            name, kv = self.find(name, version)
            return 200, self.bundle(name, kv), []

    def update_key(self, name, version, req):
        attributes, tags = self.key_fields(req)
        ops = check_ops(req["key_ops"]) if req.get("key_ops") is not None else None
        with self.state.lock:
            name, kv = self.find(name, version)
            if attributes.get("enabled") is not None:
                kv.enabled = attributes["enabled"] is not False
            for field in ("nbf", "exp"):
                if field in attributes:
                    setattr(kv, field, attributes[field])
            if ops is not None:
                kv.key_ops = ops
            if "tags" in req:
                kv.tags = dict(tags)
            kv.updated = int(time.time())
            return 200, self.bundle(name, kv), []

    def deleted_bundle(self, name, versions, deleted_date):
        out = self.bundle(name, versions[-1])
        out.update({"recoveryId": f"{self.base}/deletedkeys/{name}", "deletedDate": deleted_date,
                    "scheduledPurgeDate": deleted_date + RECOVERABLE_DAYS * 86400})
        return out

    def delete_key(self, name):
        with self.state.lock:
            entry = self.state.keys.pop(name.lower(), None)
            if entry is None:
                raise key_not_found(name)
            record = (entry[0], entry[1], int(time.time()))
            self.state.deleted[name.lower()] = record
            return 200, self.deleted_bundle(*record), []

    def get_deleted(self, name):
        with self.state.lock:
            record = self.state.deleted.get(name.lower())
            if record is None:
                raise kv_error(404, "KeyNotFound", "Deleted Key not found")
            return 200, self.deleted_bundle(*record), []

    def purge(self, name):
        with self.state.lock:
            if self.state.deleted.pop(name.lower(), None) is None:
                raise kv_error(404, "KeyNotFound", "Deleted Key not found")
            return 204, None, []

    def recover(self, name):
        with self.state.lock:
            record = self.state.deleted.pop(name.lower(), None)
            if record is None:
                raise kv_error(404, "KeyNotFound", "Deleted Key not found")
            self.state.keys[name.lower()] = (record[0], record[1])
            return 200, self.bundle(record[0], record[1][-1]), []

    def page(self, items, query, path):
        raw = query.get("maxresults")
        try:
            size = MAX_RESULTS if raw in (None, "") else int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= MAX_RESULTS:
            raise bad_parameter(f"Invalid value for maxresults: '{raw}'. It must be between 1 and {MAX_RESULTS}.")
        start = 0
        token = query.get("$skiptoken")
        if token:
            try:
                start = int(json.loads(unb64u(token))["NextMarker"])
            except (ValueError, KeyError, TypeError):
                raise bad_parameter("Invalid $skiptoken.")
        next_link = None
        if start + size < len(items):
            skip = b64u(json.dumps({"NextMarker": str(start + size)}).encode())
            next_link = (f"{self.base}{path}?api-version={query['api-version']}&$skiptoken={skip}"
                         f"&maxresults={size}")
        return 200, {"value": items[start:start + size], "nextLink": next_link}, []

    def list_keys(self, query):
        with self.state.lock:
            items = []
            for _, (name, versions) in sorted(self.state.keys.items()):
                item = {"kid": self.kid(name), "attributes": versions[-1].attributes()}
                if versions[-1].tags:
                    item["tags"] = versions[-1].tags
                items.append(item)
        return self.page(items, query, "/keys")

    def list_versions(self, name, query):
        with self.state.lock:
            entry = self.state.keys.get(name.lower())
            if entry is None:
                raise key_not_found(name)
            items = []
            for kv in entry[1]:
                item = {"kid": self.kid(entry[0], kv.version), "attributes": kv.attributes()}
                if kv.tags:
                    item["tags"] = kv.tags
                items.append(item)
        return self.page(items, query, f"/keys/{entry[0]}/versions")

    def usable(self, name, version, op, req, field):
        """(name, KeyVersion, digest) for sign/verify, after Key Vault's checks."""
        with self.state.lock:
            name, kv = self.find(name, version)
            enabled, ops, crv = kv.enabled, list(kv.key_ops), kv.crv
        if not enabled and op == "sign":
            raise kv_error(403, "Forbidden", f"Operation {op} is not allowed on a disabled key.", inner="KeyDisabled")
        if op not in ops:
            raise kv_error(403, "Forbidden", f"Operation {op} is not permitted on this key.")
        _, alg_for_curve, _, digest_len, _ = curves()[crv]
        alg = req.get("alg")
        if not alg:
            raise bad_parameter("Property 'alg' is required.")
        if alg != alg_for_curve:
            raise bad_parameter(f"Invalid algorithm '{alg}' for a key with curve {crv}; use {alg_for_curve}.")
        try:
            digest = unb64u(req.get(field) or "")
        except ValueError:
            raise bad_parameter(f"Property '{field}' is not valid base64url.")
        if len(digest) != digest_len:
            raise bad_parameter(f"Invalid length of '{field}': {len(digest)} bytes. {alg} requires {digest_len} bytes, "
                                "encoded with base64url.")
        return name, kv, digest

    def sign(self, name, version, req):
        from cryptography.hazmat.primitives.asymmetric import ec, utils
        st = self.state
        with st.lock:
            st.signs_in_flight += 1
            st.stats["maxConcurrentSigns"] = max(st.stats["maxConcurrentSigns"], st.signs_in_flight)
            latency = st.sign_latency_s
        try:
            if latency:
                time.sleep(latency)
            name, kv, digest = self.usable(name, version, "sign", req, "value")
            _, _, size, _, hash_alg = curves()[kv.crv]
            # Plain ECDSA: s is whatever the signer produced (high or low half); no low-s normalisation.
            der = kv.private_key.sign(digest, ec.ECDSA(utils.Prehashed(hash_alg)))
            r, s = utils.decode_dss_signature(der)
            st.count("signs")
            return 200, {"kid": self.kid(name, kv.version),
                         "value": b64u(r.to_bytes(size, "big") + s.to_bytes(size, "big"))}, []
        finally:
            with st.lock:
                st.signs_in_flight -= 1

    def verify(self, name, version, req):
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric import ec, utils
        name, kv, digest = self.usable(name, version, "verify", req, "digest")
        _, _, size, _, hash_alg = curves()[kv.crv]
        try:
            sig = unb64u(req.get("value") or "")
        except ValueError:
            raise bad_parameter("Property 'value' is not valid base64url.")
        valid = False
        if len(sig) == 2 * size:
            der = utils.encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
            try:
                kv.private_key.public_key().verify(der, digest, ec.ECDSA(utils.Prehashed(hash_alg)))
                valid = True
            except InvalidSignature:
                pass
        return 200, {"value": valid}, []


# ---------------------------------------------------------------------------------------------------------------
# the plain-HTTP port: IMDS

class ImdsHandler(Handler):
    def route(self, path, query, body):
        st = self.state
        if path != "/metadata/identity/oauth2/token" or self.command != "GET":
            raise HttpError(404, {"error": "not_found", "error_description": "Not found"})
        if self.headers.get("Metadata", "").lower() != "true":
            raise HttpError(400, {"error": "invalid_request",
                                  "error_description": "Required metadata header not specified"})
        if not query.get("api-version"):
            raise HttpError(400, {"error": "invalid_request",
                                  "error_description": "Required query variable 'api-version' is missing"})
        resource = query.get("resource")
        if not resource:
            raise HttpError(400, {"error": "invalid_request",
                                  "error_description": "Required audience parameter not specified"})
        wanted = st.args.imds_client_id
        asked = {k: query[k] for k in ("client_id", "object_id", "msi_res_id", "mi_res_id") if query.get(k)}
        if asked and (wanted is None or asked != {"client_id": wanted}):
            raise HttpError(400, {"error": "invalid_request", "error_description": "Identity not found"})
        token, lifetime = st.issue_token(resource, "imds")
        now = int(time.time())
        return 200, {"access_token": token, "client_id": wanted or self.server.system_client_id,
                     "expires_in": str(lifetime), "expires_on": str(now + lifetime), "ext_expires_in": str(lifetime),
                     "not_before": str(now), "resource": resource, "token_type": "Bearer"}, []


# ---------------------------------------------------------------------------------------------------------------

def main(argv=None):
    t0 = time.monotonic()
    servertools.unblock_stop_signals()
    args = parse(argv)
    servertools.exit_on_stop_signals()

    ca_path, cert_path, key_path = ensure_certs(args.cert_dir)
    context = servertools.tls_server_context(cert_path, key_path)

    state = State(args)
    try:
        v6 = ipaddress.ip_address(args.host).version == 6
    except ValueError:
        v6 = False
    TLSServer.address_family = PlainServer.address_family = socket.AF_INET6 if v6 else socket.AF_INET
    main_server = TLSServer((args.host, args.port), MainHandler, state, context)
    imds_server = PlainServer((args.host, args.imds_port), ImdsHandler, state)
    if args.host in ("0.0.0.0", ""):
        shown = "127.0.0.1"
    elif v6:
        shown = "[::1]" if args.host == "::" else f"[{args.host}]"
    else:
        shown = args.host
    main_server.base_url = f"https://{shown}:{main_server.server_address[1]}"
    imds_server.system_client_id = str(uuid.uuid4())
    threading.Thread(target=imds_server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
    servertools.announce_ready(json.dumps({"vault": main_server.base_url, "authority": main_server.base_url,
                                           "imds": f"http://{shown}:{imds_server.server_address[1]}",
                                           "ca": ca_path}),
                               f"azure: ready in {time.monotonic() - t0:.2f} s")
    main_server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main()
