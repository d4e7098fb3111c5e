#!/usr/bin/env python3
"""sigv4_vectors: deterministic AWS SigV4 test vectors, signed by botocore's own signer
(botocore.auth.SigV4Auth.add_auth, the code boto3 and the AWS CLI use), for checking the Swift
`SigV4.signingHeaders(method:path:query:headers:body:date:)` against it.
Run with Tools/kms/.venv/bin/python.

  sigv4_vectors.py [--count 100] [--seed 1]

Prints COUNT JSON lines (keys sorted, ASCII-escaped); the same seed always gives the same lines.
Each line:
  {"method": "POST"|"GET",
   "path": raw, NOT percent-encoded path ("/", "/a b/ü~+"...),
   "query": [[key, value], ...] raw, NOT percent-encoded, in request order, keys may repeat, values may be "",
   "headers": [[name, value], ...] every header the caller supplies, Host included, names in mixed
              case, values with leading/trailing/repeated inner spaces; all of them are signed,
   "body_b64": base64 of the body bytes,
   "date": "YYYYMMDDTHHMMSSZ" (the signing time, UTC),
   "region", "service", "access_key", "secret_key", "session_token" (string or null),
   "expected": {"authorization": the Authorization header botocore set,
                "x-amz-date": the X-Amz-Date header botocore set (== date),
                "x-amz-security-token": the X-Amz-Security-Token header botocore set, or null,
                "canonical_path", "canonical_query", "signed_headers": the pieces, in the form the
                Swift `path:` / `query:` parameters take (already canonical), and
                "canonical_request", "string_to_sign": for debugging a mismatch}}

How botocore canonicalises (botocore.auth.SigV4Auth, non-S3 rules), and so what the vectors hold:
  * Path: canonical_path = urllib.parse.quote(remove_dot_segments(url_path), safe="/~"): UTF-8
    percent-encoding, upper-case hex, of everything but A-Z a-z 0-9 - _ . ~ and "/". botocore
    takes url_path as it appears in the URL; these vectors put the RAW path there, so
    canonical_path is the raw path encoded ONCE. (boto3 itself puts an already-encoded path in the
    URL, so on the wire AWS's non-S3 rule "encode twice" results; for KMS the path is always "/",
    where both agree.) Generated paths have no "." / ".." / empty segments, so
    remove_dot_segments changes nothing, and no "?", "#" or "%".
  * Query: each key and value is encoded with quote(s, safe="-_.~") (space -> %20, "+" -> %2B,
    "=" -> %3D, "/" -> %2F, UTF-8 for non-ASCII, upper-case hex); the encoded (key, value) pairs
    are sorted by encoded key, then by encoded value (repeated keys), and joined as k=v with "&";
    an empty value gives "k=". No query: "".
  * Headers: botocore signs every header except its SIGNED_HEADERS_BLACKLIST (baggage, connection,
    expect, keep-alive, proxy-authenticate, proxy-authorization, te, traceparent, tracestate,
    trailer, transfer-encoding, upgrade, user-agent, x-amzn-trace-id). The vectors never supply
    those (so "every supplied header is signed" holds, as in the Swift API), nor Authorization,
    X-Amz-Date, Date (botocore would sign with Date instead of X-Amz-Date), X-Amz-Security-Token,
    X-Amz-Content-SHA256 (botocore would take it as the payload hash). botocore adds X-Amz-Date
    and, with a session token, X-Amz-Security-Token, and signs both. Canonical header: lower-case
    name, ":", value with leading/trailing whitespace removed and inner runs collapsed to one space
    (botocore: " ".join(value.split())); sorted by name; names are unique case-insensitively
    (botocore would join repeated names' values with ","). Values are printable ASCII and spaces,
    no tabs (botocore's split() also folds tabs; the Swift code only folds spaces).
  * Payload: lower-case hex SHA-256 of the body (also over https and for an empty body).
"""

import argparse
import base64
import datetime
import hashlib
import json
import random
import string
import sys
from unittest import mock

import botocore.auth
from botocore.auth import SIGNED_HEADERS_BLACKLIST, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGIONS = ["us-east-1", "us-west-2", "eu-central-1", "ap-southeast-2", "sa-east-1", "cn-north-1", "us-gov-west-1"]
SERVICES = ["kms", "sts", "iam", "dynamodb", "execute-api", "my-service"]
HOSTS = ["127.0.0.1:{port}", "localhost:{port}", "kms.{region}.amazonaws.com", "[::1]:{port}", "example.com"]
# Path characters: unreserved, sub-delims and others that need encoding; never "?", "#", "%".
PATH_CHARS = string.ascii_letters + string.digits + "-_.~ +!$&'()*,;=:@[]{}|^`\"<>" + "äöüßé€日本✓"
QUERY_CHARS = PATH_CHARS + "/?#%"
VALUE_CHARS = "".join(c for c in string.printable if c not in "\t\n\r\x0b\x0c")
NAME_CHARS = string.ascii_letters + string.digits + "-"
FORBIDDEN_HEADERS = set(SIGNED_HEADERS_BLACKLIST) | {
    "authorization", "x-amz-date", "date", "x-amz-security-token", "x-amz-content-sha256", "host"}
COMMON_HEADERS = ["Content-Type", "X-Amz-Target", "Content-Length", "Accept", "X-Amz-Meta-Owner",
                  "x-amz-user-agent", "Cache-Control", "Content-Encoding", "X-Custom"]


def rand_text(rng, chars, lo, hi):
    return "".join(rng.choice(chars) for _ in range(rng.randint(lo, hi)))


def rand_path(rng):
    if rng.random() < 0.2:
        return "/"
    segments = []
    for _ in range(rng.randint(1, 4)):
        seg = rand_text(rng, PATH_CHARS, 1, 8)
        while seg in (".", ".."):
            seg = rand_text(rng, PATH_CHARS, 1, 8)
        segments.append(seg)
    return "/" + "/".join(segments) + ("/" if rng.random() < 0.2 else "")


def rand_query(rng):
    if rng.random() < 0.25:
        return []
    pairs = []
    keys = [rand_text(rng, QUERY_CHARS, 1, 6) for _ in range(rng.randint(1, 4))]
    for _ in range(rng.randint(1, 6)):
        key = rng.choice(keys)  # repeated keys
        value = "" if rng.random() < 0.2 else rand_text(rng, QUERY_CHARS, 1, 8)
        pairs.append([key, value])
    return pairs


def messy_spaces(rng, value):
    """Value with leading/trailing and repeated inner spaces, now and then."""
    r = rng.random()
    if r < 0.3:
        words = value.split(" ") or [value]
        value = (" " * rng.randint(1, 3)).join(words)
        value = " " * rng.randint(0, 3) + value + " " * rng.randint(0, 3)
    elif r < 0.45:
        value = " " * rng.randint(1, 4) + value
    elif r < 0.6:
        value = value + " " * rng.randint(1, 4)
    return value


def rand_case(rng, name):
    mode = rng.random()
    if mode < 0.3:
        return name.lower()
    if mode < 0.45:
        return name.upper()
    if mode < 0.6:
        return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)
    return name


def rand_headers(rng, region, body):
    port = rng.choice([80, 443, 4566, 8080, 54321])
    host = rng.choice(HOSTS).format(port=port, region=region)
    headers = [[rng.choice(["Host", "host", "HOST"]), host]]
    seen = {"host"}
    for _ in range(rng.randint(0, 6)):
        if rng.random() < 0.6:
            name = rng.choice(COMMON_HEADERS)
        else:
            name = "X-" + rand_text(rng, NAME_CHARS, 1, 10).strip("-") + "a"
        name = rand_case(rng, name)
        if name.lower() in seen or name.lower() in FORBIDDEN_HEADERS:
            continue
        seen.add(name.lower())
        low = name.lower()
        if low == "content-type":
            value = rng.choice(["application/x-amz-json-1.1", "application/json; charset=utf-8", "text/plain"])
        elif low == "x-amz-target":
            value = "TrentService." + rng.choice(["Sign", "GetPublicKey", "ListKeys", "DescribeKey"])
        elif low == "content-length":
            value = str(len(body))
        elif rng.random() < 0.05:
            value = ""
        else:
            value = rand_text(rng, VALUE_CHARS.replace(" ", ""), 1, 6)
            for _ in range(rng.randint(0, 3)):
                value += " " + rand_text(rng, VALUE_CHARS.replace(" ", ""), 1, 6)
        headers.append([name, messy_spaces(rng, value)])
    return headers


def rand_body(rng, method):
    r = rng.random()
    if r < 0.2 or (method == "GET" and r < 0.6):
        return b""
    if r < 0.6:
        return json.dumps({"KeyId": "alias/" + rand_text(rng, string.ascii_lowercase, 3, 10),
                           "Message": base64.b64encode(rng.randbytes(32)).decode()}).encode()
    return rng.randbytes(rng.randint(1, 300))


class RecordingSigV4Auth(SigV4Auth):
    """botocore's SigV4Auth, unchanged, keeping the canonical request and string to sign it made."""

    recorded = None

    def canonical_request(self, request):
        self.recorded = {"canonical_request": super().canonical_request(request)}
        return self.recorded["canonical_request"]

    def string_to_sign(self, request, canonical_request):
        self.recorded["string_to_sign"] = super().string_to_sign(request, canonical_request)
        return self.recorded["string_to_sign"]


def vector(rng):
    method = rng.choice(["POST", "GET"])
    region = rng.choice(REGIONS)
    service = rng.choice(SERVICES)
    path = rand_path(rng)
    query = rand_query(rng)
    body = rand_body(rng, method)
    headers = rand_headers(rng, region, body)
    when = datetime.datetime(2015, 1, 1) + datetime.timedelta(seconds=rng.randrange(20 * 365 * 86400))
    access_key = "AKIA" + rand_text(rng, string.ascii_uppercase + "234567", 16, 16)
    secret_key = rand_text(rng, string.ascii_letters + string.digits + "+/", 40, 40)
    session_token = (rand_text(rng, string.ascii_letters + string.digits + "+/=", 40, 200)
                     if rng.random() < 0.4 else None)

    scheme = rng.choice(["https", "http"])
    request = AWSRequest(method=method, url=f"{scheme}://example.invalid{path}", data=body,
                         headers=dict((name, value) for name, value in headers), params=[tuple(p) for p in query])
    signer = RecordingSigV4Auth(Credentials(access_key, secret_key, session_token), service, region)
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: when):
        signer.add_auth(request)
    canonical_request = signer.recorded["canonical_request"]
    expected = {
        "authorization": request.headers["Authorization"],
        "x-amz-date": request.headers["X-Amz-Date"],
        "x-amz-security-token": request.headers.get("X-Amz-Security-Token"),
        "canonical_path": canonical_request.split("\n")[1],
        "canonical_query": canonical_request.split("\n")[2],
        "signed_headers": canonical_request.split("\n")[-2],
        "canonical_request": canonical_request,
        "string_to_sign": signer.recorded["string_to_sign"],
    }
    assert expected["x-amz-date"] == when.strftime("%Y%m%dT%H%M%SZ")
    assert expected["authorization"].endswith(
        "Signature=" + signer.signature(expected["string_to_sign"], request))
    assert hashlib.sha256(body).hexdigest() == canonical_request.rsplit("\n", 1)[1]
    return {
        "method": method, "path": path, "query": query, "headers": headers,
        "body_b64": base64.b64encode(body).decode(), "date": expected["x-amz-date"],
        "region": region, "service": service, "access_key": access_key, "secret_key": secret_key,
        "session_token": session_token, "expected": expected,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description="deterministic SigV4 vectors signed by botocore")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    out = sys.stdout
    for _ in range(args.count):
        out.write(json.dumps(vector(rng), sort_keys=True) + "\n")
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
