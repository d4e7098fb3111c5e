#!/usr/bin/env python3
"""ethsign_proxy: an HTTP(S) server in front of a real OpenBao that serves the ethsign plugin's API at
/v1/<mount>/ (ethsign_plugin.py, a double of kaleido-io/vault-plugin-secrets-ethsign) and proxies everything else
to OpenBao byte for byte. Run with Tools/vault/.venv/bin/python (see install.sh).

  ethsign_proxy.py --upstream URL [--upstream-ca FILE] [--host 127.0.0.1] [--port 0] [--mount ethereum]
                   [--sign-latency-ms MS] [--tls-cert-dir DIR [--require-client-cert]] [--log-requests]

Prints exactly one line on stdout (flushed) once the socket accepts connections:
  ethsign proxy listening on http(s)://127.0.0.1:PORT

A plugin request is authorised by OpenBao itself: the proxy sends the caller's own token (X-Vault-Token or
Authorization: Bearer) and namespace to POST /v1/sys/capabilities-self and applies Vault's operation -> capability
mapping (README.md, "Authorization"). Accounts live in memory, one set per (namespace, mount).

  --upstream URL        the OpenBao address (http://127.0.0.1:8200)
  --upstream-ca FILE    CA bundle for an https upstream (bao -dev-tls writes DIR/vault-ca.pem)
  --mount M             where the plugin is "mounted" (default ethereum); in every namespace
  --sign-latency-ms MS  sleep MS ms inside every sign (the server is threaded: concurrent signs overlap)
  --tls-cert-dir DIR    serve HTTPS; DIR/ca.pem, server.pem, server-key.pem (and client.pem, client-key.pem)
                        are made there with a fresh test CA unless they all exist already
  --require-client-cert TLS clients must present a certificate signed by DIR/ca.pem (DIR/client.pem is one)
  --log-requests        one line per request on stderr

SIGTERM / SIGINT exit at once with code 0. No child processes.
"""

import argparse
import datetime
import email.utils
import http.client
import http.server
import ipaddress
import json
import os
import re
import socket
import ssl
import sys
import threading
import time
import urllib.parse

import ethsign_plugin as plugin

# servertools (Tools/shared, stdlib only): the signal, TLS and ready-line helpers every tool's server shares.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shared"))
import servertools  # noqa: E402

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "proxy-connection"}
MAX_JSON_STRINGS = 1000  # OpenBao's listener default max_request_json_strings
MAX_REQUEST_SIZE = 33554432  # max_request_size


def parse(argv=None):
    p = argparse.ArgumentParser(description="ethsign plugin double in front of OpenBao")
    p.add_argument("--upstream", required=True, metavar="URL")
    p.add_argument("--upstream-ca", metavar="FILE")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    add_proxy_options(p)
    p.add_argument("--log-requests", action="store_true")
    args = p.parse_args(argv)
    check_proxy_options(p, args)
    args.mount = args.mount.strip("/")
    if not args.mount:
        p.error("--mount must not be empty")
    return args


def add_proxy_options(p):
    """The proxy's options that vault_stack.py takes too (and passes on): --mount, --sign-latency-ms, --tls-cert-dir,
    --require-client-cert. check_proxy_options(p, args) checks them after parse_args."""
    p.add_argument("--mount", default="ethereum")
    p.add_argument("--sign-latency-ms", type=float, default=0.0, metavar="MS")
    p.add_argument("--tls-cert-dir", metavar="DIR")
    p.add_argument("--require-client-cert", action="store_true")


def check_proxy_options(p, args):
    if args.sign_latency_ms < 0:
        p.error("--sign-latency-ms must be >= 0")
    if args.require_client_cert and not args.tls_cert_dir:
        p.error("--require-client-cert needs --tls-cert-dir")


# ---------------------------------------------------------------------------------------------------------------
# Go-compatible JSON

def go_json(obj):
    """encoding/json.Encoder.Encode: compact, UTF-8, <>& and U+2028/9 escaped, trailing newline."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    s = (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
         .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return (s + "\n").encode("utf-8", "replace")


def _reject_constant(name):
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


_DECODER = json.JSONDecoder(parse_int=plugin.GoNumber, parse_float=plugin.GoNumber, parse_constant=_reject_constant)


def parse_json_body(text):
    """OpenBao parseJSONRequest: every JSON value in the body must be well formed (EnforceJSONComplexityLimits reads
    all tokens), the first one is decoded into map[string]interface{} with UseNumber. Returns (data, error)."""
    values = []
    strings = 0
    i = 0
    n = len(text)
    ws = " \t\n\r"
    while True:
        while i < n and text[i] in ws:
            i += 1
        if i >= n:
            break
        try:
            value, end = _DECODER.raw_decode(text, i)
        except json.JSONDecodeError as e:
            if e.pos >= n:
                return None, "failed to decode JSON input: unexpected EOF"
            return None, f"failed to decode JSON input: invalid character '{text[e.pos]}' looking for beginning of value"
        except ValueError as e:
            return None, f"failed to decode JSON input: {e}"
        strings += _count_strings(value)
        if strings > MAX_JSON_STRINGS:
            return None, "refused JSON input due to high complexity: exceeded maximum number of strings"
        values.append(value)
        i = end
    if not values:
        return None, None  # io.EOF: no data
    first = values[0]
    if first is None:
        return None, None
    if not isinstance(first, dict):
        kind = {list: "array", bool: "bool", plugin.GoNumber: "number"}.get(type(first), "string")
        return None, f"failed to decode JSON input: json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
    return first, None


def _count_strings(v):
    if isinstance(v, dict):
        return sum(1 + _count_strings(x) for x in v.values())
    if isinstance(v, list):
        return sum(_count_strings(x) for x in v)
    return 1 if isinstance(v, str) and not isinstance(v, plugin.GoNumber) else 0


def parse_query(query):
    """OpenBao parseQuery: help is skipped, one value -> string, several -> []string."""
    data = {}
    for k, vs in urllib.parse.parse_qs(query, keep_blank_values=True).items():
        if k == "help":
            continue
        data[k] = vs[0] if len(vs) == 1 else plugin.GoStringSlice(vs)
    return data or None


def parse_bool(s):
    """strconv.ParseBool"""
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(s)


def canonical_namespace(ns):
    """namespace.Canonicalize (+ a header of "root" is the root namespace): "" or "a/b/"."""
    ns = ns.lstrip("/")
    parts = []
    for seg in ns.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        parts.append(seg)
    out = "/".join(parts)
    out = out + "/" if out else ""
    return "" if out == "root/" else out


def multi(msg):
    """go-multierror's text for one error."""
    return f"1 error occurred:\n\t* {msg}\n\n"


def request_id():
    """hashicorp/go-uuid GenerateUUID: 16 random bytes as 8-4-4-4-12 hex."""
    b = os.urandom(16).hex()
    return f"{b[0:8]}-{b[8:12]}-{b[12:16]}-{b[16:20]}-{b[20:32]}"


# ---------------------------------------------------------------------------------------------------------------
# TLS material

def ensure_tls_material(cert_dir, client=True):
    """A test CA plus a server certificate for 127.0.0.1 / ::1 / localhost and a client certificate, in cert_dir:
    ca.pem, ca-key.pem, server.pem, server-key.pem, client.pem, client-key.pem. Kept when they all exist."""
    names = ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem", "client.pem", "client-key.pem"]
    os.makedirs(cert_dir, exist_ok=True)
    paths = {n: os.path.join(os.path.abspath(cert_dir), n) for n in names}
    if all(os.path.exists(p) for p in paths.values()):
        return paths

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    later = now + datetime.timedelta(days=3650)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = key()
    ca = (x509.CertificateBuilder().subject_name(name("ethsign-proxy test CA")).issuer_name(name("ethsign-proxy test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    def leaf(cn, usage, sans):
        k = key()
        b = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject).public_key(k.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(later)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return k, b.sign(ca_key, hashes.SHA256())

    server_key, server = leaf("127.0.0.1", ExtendedKeyUsageOID.SERVER_AUTH, [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1")),
        x509.DNSName("localhost")])
    client_key, client_cert = leaf("ethsign-proxy test client", ExtendedKeyUsageOID.CLIENT_AUTH, [])

    def write(path, data, private=False):
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def key_pem(k):
        return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())

    write(paths["ca-key.pem"], key_pem(ca_key), True)
    write(paths["server-key.pem"], key_pem(server_key), True)
    write(paths["client-key.pem"], key_pem(client_key), True)
    write(paths["server.pem"], server.public_bytes(serialization.Encoding.PEM))
    write(paths["client.pem"], client_cert.public_bytes(serialization.Encoding.PEM))
    write(paths["ca.pem"], ca.public_bytes(serialization.Encoding.PEM))  # last: its presence means "all written"
    return paths


# ---------------------------------------------------------------------------------------------------------------

class Upstream:
    """Keep-alive connections to OpenBao, one per handler thread."""

    def __init__(self, url, ca_file=None):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https"):
            raise ValueError(f"upstream must be http(s)://host:port, not {url!r}")
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.ctx = None
        if u.scheme == "https":
            self.ctx = ssl.create_default_context(cafile=ca_file)
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            if self.ctx is not None:
                c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=120)
            else:
                c = http.client.HTTPConnection(self.host, self.port, timeout=120)
            self.local.conn = c
        return c

    def request(self, method, target, headers, body):
        """One request; returns (status, reason, [(name, value)], body bytes). Retries once on a stale connection."""
        for attempt in (0, 1):
            c = self._conn()
            try:
                c.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                if not any(k.lower() == "host" for k, _ in headers):
                    c.putheader("Host", f"{self.host}:{self.port}")
                for k, v in headers:
                    c.putheader(k, v)
                c.endheaders(body if body else None)
                resp = c.getresponse()
                data = resp.read()
                if resp.will_close:
                    c.close()
                    self.local.conn = None
                return resp.status, resp.reason, resp.getheaders(), data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                c.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


class Proxy:
    def __init__(self, upstream, mount="ethereum", sign_latency_s=0.0, log_requests=False):
        self.upstream = upstream
        self.mount = mount
        self.sign_latency_s = sign_latency_s
        self.log_requests = log_requests
        self.backends = {}
        self.lock = threading.Lock()

    def backend(self, namespace):
        with self.lock:
            b = self.backends.get(namespace)
            if b is None:
                b = self.backends[namespace] = plugin.Backend(self.sign_latency_s)
            return b

    def plugin_target(self, rel):
        """(namespace prefix from the path, path inside the mount) when rel (the path after /v1/) names the plugin
        mount, else None. The mount may follow a namespace path (/v1/ns1/ethereum/...)."""
        m = self.mount
        if rel == m or rel.startswith(m + "/"):
            return "", rel[len(m) + 1:]
        i = rel.find("/" + m + "/")
        if i < 0 and rel.endswith("/" + m):
            i = len(rel) - len(m) - 1
        if i > 0:
            return rel[:i], rel[i + len(m) + 2:]
        return None


def make_handler(proxy):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "ethsign-proxy"

        def log_message(self, fmt, *a):
            if proxy.log_requests:
                sys.stderr.write("ethsign-proxy: %s %s\n" % (self.address_string(), fmt % a))

        def __getattr__(self, name):
            if name.startswith("do_"):
                return self.dispatch
            raise AttributeError(name)

        # -- plumbing ---------------------------------------------------------------------------------------------
        def read_body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    line = self.rfile.readline(65537)
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline(65537)
                return b"".join(chunks)
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n > 0 else b""

        def write(self, status, reason, headers, body, content_length=True):
            self.send_response_only(status, reason)
            for k, v in headers:
                self.send_header(k, v)
            no_body = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
            if content_length and not no_body:
                self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if not no_body and body:
                self.wfile.write(body)
            self.wfile.flush()

        def respond_vault(self, status, body_obj=None, ns_header=None):
            """Answer as OpenBao's http package does (respondOk / respondError)."""
            headers = [("Cache-Control", "no-store"), ("Content-Type", "application/json"),
                       ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")]
            if ns_header is not None:
                headers.append(("X-Vault-Namespace", ns_header))
            headers.append(("Date", email.utils.formatdate(usegmt=True)))
            body = b"" if body_obj is None else go_json(body_obj)
            self.write(status, http.HTTPStatus(status).phrase, headers, body)

        def respond_error(self, status, message, ns_header=None):
            self.respond_vault(status, {"errors": [] if message is None else [message]}, ns_header)

        def forward(self, body, target=None):
            headers = [(k, v) for k, v in self.headers.items()
                       if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            if body or self.command in ("POST", "PUT", "PATCH"):
                headers.append(("Content-Length", str(len(body))))
            try:
                status, reason, rheaders, rbody = proxy.upstream.request(
                    self.command, target or self.path, headers, body)
            except OSError as e:
                self.close_connection = True
                self.write(502, "Bad Gateway", [("Content-Type", "text/plain")],
                           f"ethsign-proxy: upstream error: {e}\n".encode())
                return
            out = [(k, v) for k, v in rheaders if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            if self.command == "HEAD":
                out += [(k, v) for k, v in rheaders if k.lower() == "content-length"]
            self.write(status, reason, out, rbody, content_length=self.command != "HEAD")

        # -- dispatch ---------------------------------------------------------------------------------------------
        def dispatch(self):
            try:
                body = self.read_body()
            except (ValueError, OSError):
                self.close_connection = True
                return
            split = urllib.parse.urlsplit(self.path)
            raw_path = split.path
            target = None
            if raw_path.startswith("/v1/") and self.command != "OPTIONS":
                rel = urllib.parse.unquote(raw_path[len("/v1/"):])
                # Paths OpenBao would clean or refuse go to OpenBao as they are.
                if not re.search(r"(^|/)\.\.?(/|$)|//", rel):
                    target = proxy.plugin_target(rel)
            if target is None:
                self.forward(body)
                return
            try:
                self.plugin_request(target[0], target[1], split.query, body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def plugin_request(self, ns_prefix, path, query, body):
            ns_header = self.headers.get("X-Vault-Namespace")
            method = self.command

            # OpenBao http.buildLogicalRequestNoAuth: the operation, the path and the data.
            data = None
            if method == "DELETE":
                op = "delete"
                data = parse_query(query)
            elif method == "GET":
                op = "read"
                q = urllib.parse.parse_qs(query, keep_blank_values=True)
                try:
                    lst = parse_bool(q["list"][0]) if q.get("list", [""])[0] != "" else False
                    scan = parse_bool(q["scan"][0]) if q.get("scan", [""])[0] != "" else False
                except ValueError:
                    return self.respond_error(400, None)
                if lst and scan:
                    return self.respond_error(400, None)
                if lst:
                    q.pop("list", None)
                if scan:
                    q.pop("scan", None)
                if lst or scan:
                    op = "list" if lst else "scan"
                    if not path.endswith("/"):
                        path += "/"
                data = parse_query(urllib.parse.urlencode(q, doseq=True))
            elif method in ("POST", "PUT"):
                op = "update"
                if len(body) > MAX_REQUEST_SIZE:
                    return self.respond_error(413, "error reading data")
                ctype = self.headers.get("Content-Type", "")
                if _is_form(body[:512], ctype):
                    form = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
                    data = {k: (v[0] if len(v) == 1 else ",".join(v)) for k, v in form.items()} or None
                else:
                    data, err = parse_json_body(body.decode("utf-8", "replace"))
                    if err:
                        return self.respond_error(400, err)
            elif method == "PATCH":
                op = "patch"
                ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if ctype != "application/merge-patch+json":
                    return self.respond_error(415, "PATCH requires Content-Type of application/merge-patch+json, "
                                                   f"provided {ctype}")
                data, err = parse_json_body(body.decode("utf-8", "replace"))
                if err:
                    return self.respond_error(400, err)
            elif method in ("LIST", "SCAN"):
                op = method.lower()
                if not path.endswith("/"):
                    path += "/"
                data = parse_query(query)
            elif method == "HEAD":
                op = "header"
                data = parse_query(query)
            else:
                return self.respond_error(405, None)

            # The token and the namespace, checked by OpenBao: capabilities-self with the caller's credentials.
            namespace = canonical_namespace((ns_header or "") + "/" + ns_prefix)
            acl_path = proxy.mount + "/" + path
            headers = [("Content-Type", "application/json")]
            for h in ("X-Vault-Token", "Authorization"):
                if self.headers.get(h) is not None:
                    headers.append((h, self.headers.get(h)))
            if namespace:
                headers.append(("X-Vault-Namespace", namespace))
            cbody = json.dumps({"paths": [acl_path]}).encode()
            headers.append(("Content-Length", str(len(cbody))))
            try:
                status, reason, rheaders, rbody = proxy.upstream.request(
                    "POST", "/v1/sys/capabilities-self", headers, cbody)
            except OSError as e:
                self.close_connection = True
                return self.write(502, "Bad Gateway", [("Content-Type", "text/plain")],
                                  f"ethsign-proxy: upstream error: {e}\n".encode())
            if status == 404 and ns_prefix and b"namespace not found" in rbody:
                return self.forward(body)  # not a namespace after all: OpenBao answers the original request
            if status != 200:
                # OpenBao's own answer (403 for a missing, invalid or expired token, 404 for an unknown namespace),
                # with the request's namespace header echoed as OpenBao echoes it.
                skip = HOP_BY_HOP | {"content-length", "x-vault-namespace", "date"}
                out = [(k, v) for k, v in rheaders if k.lower() not in skip]
                if ns_header is not None:
                    out.append(("X-Vault-Namespace", ns_header))
                out.sort(key=lambda kv: kv[0].lower())
                out += [(k, v) for k, v in rheaders if k.lower() == "date"]
                return self.write(status, reason, out, rbody)
            try:
                caps = set(json.loads(rbody)["data"][acl_path])
            except (ValueError, KeyError, TypeError):
                return self.respond_error(500, multi("internal error"), ns_header)

            backend = proxy.backend(namespace)

            # Core.CheckToken: for a write, the backend's existence check picks create or update.
            if op == "update":
                try:
                    found, exists = plugin.existence_check(backend, path, data)
                except plugin.UnsupportedPath:
                    found, exists = False, False
                except plugin.UserError as e:
                    return self.respond_error(400, str(e), ns_header)
                if found and not exists:
                    op = "create"

            # ACL.AllowOperation: the capability for the operation (HEAD only with root).
            needed = {"read": "read", "list": "list", "update": "update", "create": "create", "delete": "delete",
                      "patch": "patch", "scan": "scan"}.get(op)
            if "root" not in caps and ("deny" in caps or needed not in caps):
                return self.respond_error(403, multi("permission denied"), ns_header)

            # The plugin (framework.Backend.HandleRequest), then OpenBao's RespondErrorCommon / respondLogical.
            try:
                out = plugin.handle_request(backend, op, path, data)
            except plugin.UnsupportedPath:
                return self.respond_error(404, multi("unsupported path"), ns_header)
            except plugin.UnsupportedOperation:
                return self.respond_error(405, multi("unsupported operation"), ns_header)
            except plugin.GoError as e:
                return self.respond_error(500, multi(str(e)), ns_header)
            except plugin.PluginPanic as e:
                sys.stderr.write(f"ethsign-proxy: the real plugin would panic here: {e}\n")
                return self.respond_error(500, multi("plugin shutdown"), ns_header)
            if op in ("list", "scan") and not (out or {}).get("keys"):
                return self.respond_error(404, None, ns_header)
            if out is None:
                return self.respond_vault(204, None, ns_header)
            return self.respond_vault(200, {
                "request_id": request_id(), "lease_id": "", "renewable": False, "lease_duration": 0,
                "data": {k: out[k] for k in sorted(out)}, "wrap_info": None, "warnings": None, "auth": None,
            }, ns_header)

    return Handler


def _is_form(head, content_type):
    """OpenBao http.isForm"""
    ctype = content_type.split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return False
    for c in head:
        if c in b" \t\n\r":
            continue
        return c not in b"[{"
    return True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, handler, tls_context=None):
        self.tls_context = tls_context
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls_context is not None:
            # The handshake runs in the request thread (on first read), not in the accept loop.
            sock = self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address):
        if self.tls_context is not None:
            try:
                request.settimeout(30)
                request.do_handshake()
                request.settimeout(None)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def build(args):
    """(server, url, tls paths or None) for parsed args; the caller runs server.serve_forever()."""
    upstream = Upstream(args.upstream, args.upstream_ca)
    proxy = Proxy(upstream, args.mount, args.sign_latency_ms / 1000.0, args.log_requests)
    ctx = None
    paths = None
    if args.tls_cert_dir:
        paths = ensure_tls_material(args.tls_cert_dir)
        ctx = servertools.tls_server_context(paths["server.pem"], paths["server-key.pem"],
                                             paths["ca.pem"] if args.require_client_cert else None)
    server = Server((args.host, args.port), make_handler(proxy), ctx)
    scheme = "https" if ctx else "http"
    host = args.host if ":" not in args.host else f"[{args.host}]"
    return server, f"{scheme}://{host}:{server.server_address[1]}", paths


def main(argv=None):
    t0 = time.monotonic()
    servertools.unblock_stop_signals()
    args = parse(argv)
    servertools.exit_on_stop_signals()
    server, url, _ = build(args)
    servertools.announce_ready(f"ethsign proxy listening on {url}",
                               f"ethsign-proxy: ready in {time.monotonic() - t0:.2f} s (upstream {args.upstream})")
    server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main()
