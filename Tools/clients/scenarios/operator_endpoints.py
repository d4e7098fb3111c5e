"""Operator endpoints: /health, /ready, /status and /metrics over HTTP, as monitoring reads them.

/metrics must refuse a caller without the admin token (401) and, with it, be valid Prometheus text (parsed by
prometheus_client, the reference Python parser) holding the gateway's request counter. /status must name the
version and chain, and list backends only for the admin.
"""

import json
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from _common import base_parser, check, report


def get(url, token=None, timeout=30):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scenario(args):
    base = args.url.rstrip("/")
    status, _ = get(base + "/health", timeout=args.timeout)
    check(status == 200, "/health answers 200", 200, status)
    ready, ready_body = get(base + "/ready", timeout=args.timeout)
    anonymous, _ = get(base + "/metrics", timeout=args.timeout)
    check(anonymous == 401, "/metrics without a token is refused", 401, anonymous)
    code, text = get(base + "/metrics", args.admin_token, args.timeout)
    check(code == 200, "/metrics with the admin token answers", 200, code)
    families = {family.name: family for family in text_string_to_metric_families(text)}
    # prometheus_client names a counter family without its _total suffix.
    check("signer_gateway_requests" in families, "the request counter is exposed", "signer_gateway_requests",
          sorted(families))
    requests = {(s.labels.get("method"), s.labels.get("code")): s.value
                for s in families["signer_gateway_requests"].samples if s.name.endswith("_total")}
    code, public = get(base + "/status", None, args.timeout)
    public = json.loads(public)
    check(code == 200 and "version" in public and "backends" not in public,
          "/status without a token: version, no backends", "version only", public)
    code, detail = get(base + "/status", args.admin_token, args.timeout)
    detail = json.loads(detail)
    check("backends" in detail, "/status for the admin lists the backends", "backends", detail)
    return {
        "ready": ready, "ready_detail": json.loads(ready_body), "families": sorted(families),
        "requests": {f"{m}|{c}": v for (m, c), v in requests.items()},
        "status": public, "admin_status": detail,
    }


def main():
    parser = base_parser(__doc__)
    parser.add_argument("--admin-token", required=True)
    args = parser.parse_args()
    return report(lambda: scenario(args))


if __name__ == "__main__":
    sys.exit(main())
