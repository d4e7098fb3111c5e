#!/usr/bin/env python3
"""setup_vault: prepares a vault_stack (or any Vault/OpenBao with the ethsign plugin) for the gateway's tests.
Run with Tools/vault/.venv/bin/python. Everything goes through --address (the proxy: plugin paths are the double,
the rest is the real OpenBao).

  setup_vault.py [ethsign] --address URL --token ROOT [--ca FILE] [--client-cert FILE --client-key FILE]
                 [--namespace NS] [--mount ethereum] [--count 1] [--import HEXKEY ...]
                 [--role ethsign-user] [--approle-mount approle] [--token-ttl 1h] [--token-max-ttl 24h]
                 [--secret-id-ttl 0] [--user-token-ttl 1h] [--policy-prefix ethsign]
  setup_vault.py kv --address URL --token ROOT [--ca FILE] [--client-cert FILE --client-key FILE]
                 [--namespace NS] [--mount secret] [--path ethsign/key-0] [--private-key HEX] [--format hex|0x]
                 [--policy ethsign-kv-reader] [--token-ttl 1h]

ethsign: creates the namespace (with --namespace; nested "a/b" level by level) and, inside it, the policies
<prefix>-user and <prefix>-admin (README.md, "Policies"), AppRole at auth/<approle-mount> with role <role> bound to
the user policy, a user token and an admin token (auth/token/create), then imports the --import keys and creates
--count new accounts with the admin token (POST <mount>/accounts). One JSON line:
  {"vaultAddress": URL, "namespace": NS|null, "mount": "ethereum",
   "policies": {"user": NAME, "admin": NAME}, "policyText": {"user": HCL, "admin": HCL},
   "approle": {"mount": "approle", "role": ROLE, "roleId": ID, "secretId": SECRET,
               "tokenTtl": "1h", "tokenMaxTtl": "24h"},
   "userToken": TOKEN, "adminToken": TOKEN, "accounts": ["0x...", ...]}   (imports first, in order)

kv: enables KV v2 at --mount when it is not mounted, writes {"privateKey": KEY} to <mount>/data/<path> (KEY is
--private-key as given, or a new key: 64 lower-case hex, "0x"-prefixed with --format 0x), writes a policy that can
read exactly that path and makes a token with it. One JSON line:
  {"vaultAddress": URL, "namespace": NS|null, "mount": "secret", "path": "ethsign/key-0", "field": "privateKey",
   "version": N, "address": "0x<40 hex>", "privateKey": KEY, "policy": NAME, "token": TOKEN}

Exit code 0 on success, 1 on a Vault error (on stderr), 2 on bad arguments.
"""

import argparse
import json
import os
import sys

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# servertools (Tools/shared, stdlib only): the JSON-line-or-error ending every tool's setup script shares.
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "shared"))

import ethsign_plugin  # noqa: E402
import servertools  # noqa: E402


class VaultError(Exception):
    pass


def user_policy(mount):
    return (f'# ethsign user: list accounts, read one, sign (POST {mount}/accounts/<address>/sign is a "create":\n'
            f'# the sign path has an ExistenceCheck that never finds anything)\n'
            f'path "{mount}/accounts" {{\n  capabilities = ["list"]\n}}\n'
            f'path "{mount}/accounts/*" {{\n  capabilities = ["create", "read"]\n}}\n')


def admin_policy(mount):
    return (f'# ethsign admin: create and import accounts ("update" on {mount}/accounts), list, read, sign,\n'
            f'# delete, export private keys\n'
            f'path "{mount}/accounts" {{\n  capabilities = ["update", "list"]\n}}\n'
            f'path "{mount}/accounts/*" {{\n  capabilities = ["create", "read", "delete"]\n}}\n'
            f'path "{mount}/export/accounts/*" {{\n  capabilities = ["read"]\n}}\n')


class Client:
    def __init__(self, address, token, ca=None, cert=None, namespace=None):
        self.address = address.rstrip("/")
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE / proxy variables would override --ca
        self.session.verify = ca if ca else True
        if cert:
            self.session.cert = cert
        self.token = token
        self.namespace = namespace

    def call(self, method, path, body=None, token=None, namespace="<default>", ok=(200, 204), allow=()):
        headers = {"X-Vault-Token": token or self.token}
        ns = self.namespace if namespace == "<default>" else namespace
        if ns:
            headers["X-Vault-Namespace"] = ns
        r = self.session.request(method, f"{self.address}/v1/{path}", headers=headers,
                                 data=None if body is None else json.dumps(body), timeout=30)
        if r.status_code in allow:
            return r.status_code, None
        if r.status_code not in ok:
            raise VaultError(f"{method} {path} (namespace {ns or 'root'}): HTTP {r.status_code} {r.text.strip()}")
        return r.status_code, (r.json() if r.content else None)


def ensure_namespace(c, namespace):
    """Create every level of NS that does not exist (POST sys/namespaces/<name> in its parent)."""
    parent = ""
    for name in [p for p in namespace.strip("/").split("/") if p]:
        status, _ = c.call("GET", f"sys/namespaces/{name}", namespace=parent or None, allow=(404,))
        if status == 404:
            c.call("POST", f"sys/namespaces/{name}", {}, namespace=parent or None)
        parent = f"{parent}/{name}" if parent else name


def setup_ethsign(args):
    c = Client(args.address, args.token, args.ca, _cert(args), args.namespace)
    if args.namespace:
        ensure_namespace(c, args.namespace)
    mount = args.mount.strip("/")
    names = {"user": f"{args.policy_prefix}-user", "admin": f"{args.policy_prefix}-admin"}
    texts = {"user": user_policy(mount), "admin": admin_policy(mount)}
    for k in ("user", "admin"):
        c.call("PUT", f"sys/policies/acl/{names[k]}", {"policy": texts[k]})

    _, auths = c.call("GET", "sys/auth")
    am = args.approle_mount.strip("/")
    if f"{am}/" not in (auths.get("data") or auths):
        c.call("POST", f"sys/auth/{am}", {"type": "approle"})
    role = {"token_policies": [names["user"]], "token_ttl": args.token_ttl, "token_max_ttl": args.token_max_ttl,
            "secret_id_ttl": args.secret_id_ttl}
    c.call("POST", f"auth/{am}/role/{args.role}", role)
    _, rid = c.call("GET", f"auth/{am}/role/{args.role}/role-id")
    _, sid = c.call("POST", f"auth/{am}/role/{args.role}/secret-id", {})

    def token(policy):
        _, t = c.call("POST", "auth/token/create", {"policies": [policy], "ttl": args.user_token_ttl})
        return t["auth"]["client_token"]

    user_token, admin_token = token(names["user"]), token(names["admin"])
    accounts = []
    for key in args.import_keys:
        _, r = c.call("POST", f"{mount}/accounts", {"privateKey": key}, token=admin_token)
        accounts.append(r["data"]["address"])
    for _ in range(args.count):
        _, r = c.call("POST", f"{mount}/accounts", {}, token=admin_token)
        accounts.append(r["data"]["address"])
    return {"vaultAddress": c.address, "namespace": args.namespace or None, "mount": mount,
            "policies": names, "policyText": texts,
            "approle": {"mount": am, "role": args.role, "roleId": rid["data"]["role_id"],
                        "secretId": sid["data"]["secret_id"], "tokenTtl": args.token_ttl,
                        "tokenMaxTtl": args.token_max_ttl},
            "userToken": user_token, "adminToken": admin_token, "accounts": accounts}


def setup_kv(args):
    c = Client(args.address, args.token, args.ca, _cert(args), args.namespace)
    if args.namespace:
        ensure_namespace(c, args.namespace)
    mount = args.mount.strip("/")
    path = args.path.strip("/")
    _, mounts = c.call("GET", "sys/mounts")
    table = mounts.get("data") or mounts
    entry = table.get(f"{mount}/")
    if entry is None:
        c.call("POST", f"sys/mounts/{mount}", {"type": "kv", "options": {"version": "2"}})
    elif entry.get("type") != "kv" or (entry.get("options") or {}).get("version") != "2":
        raise VaultError(f"{mount}/ is mounted, but not as KV version 2: {json.dumps(entry)}")

    if args.private_key:
        key = args.private_key
        hexkey = key[2:] if key[:2] in ("0x", "0X") else key
        try:
            raw = ethsign_plugin.hex_to_ecdsa(hexkey)
        except ValueError as e:
            raise SystemExit(_usage_error(f"--private-key: {e}"))
    else:
        raw = ethsign_plugin.generate_key()
        key = ("0x" if args.format == "0x" else "") + raw.hex()
    _, w = c.call("POST", f"{mount}/data/{path}", {"data": {"privateKey": key}})
    policy = (f'# read the gateway key at {mount}/data/{path}\n'
              f'path "{mount}/data/{path}" {{\n  capabilities = ["read"]\n}}\n')
    c.call("PUT", f"sys/policies/acl/{args.policy}", {"policy": policy})
    _, t = c.call("POST", "auth/token/create", {"policies": [args.policy], "ttl": args.token_ttl})
    return {"vaultAddress": c.address, "namespace": args.namespace or None, "mount": mount, "path": path,
            "field": "privateKey", "version": w["data"]["version"], "address": ethsign_plugin.address_of(raw),
            "privateKey": key, "policy": args.policy, "token": t["auth"]["client_token"]}


def _cert(args):
    if args.client_cert:
        return (args.client_cert, args.client_key) if args.client_key else args.client_cert
    return None


def _usage_error(msg):
    sys.stderr.write(f"setup_vault: {msg}\n")
    return 2


def common(p):
    p.add_argument("--address", required=True, metavar="URL")
    p.add_argument("--token", required=True, metavar="ROOT")
    p.add_argument("--ca", metavar="FILE")
    p.add_argument("--client-cert", metavar="FILE")
    p.add_argument("--client-key", metavar="FILE")
    p.add_argument("--namespace", metavar="NS")


def parse(argv):
    if argv and argv[0] == "kv":
        p = argparse.ArgumentParser(prog="setup_vault.py kv", description="KV v2 key for the gateway")
        common(p)
        p.add_argument("--mount", default="secret")
        p.add_argument("--path", default="ethsign/key-0")
        p.add_argument("--private-key", metavar="HEX")
        p.add_argument("--format", choices=["hex", "0x"], default="hex")
        p.add_argument("--policy", default="ethsign-kv-reader")
        p.add_argument("--token-ttl", default="1h")
        args = p.parse_args(argv[1:])
        args.command = "kv"
        return args
    if argv and argv[0] == "ethsign":
        argv = argv[1:]
    p = argparse.ArgumentParser(prog="setup_vault.py", description="ethsign policies, AppRole and accounts")
    common(p)
    p.add_argument("--mount", default="ethereum")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--import", dest="import_keys", nargs="+", default=[], metavar="HEXKEY")
    p.add_argument("--role", default="ethsign-user")
    p.add_argument("--approle-mount", default="approle")
    p.add_argument("--token-ttl", default="1h")
    p.add_argument("--token-max-ttl", default="24h")
    p.add_argument("--secret-id-ttl", default="0")
    p.add_argument("--user-token-ttl", default="1h")
    p.add_argument("--policy-prefix", default="ethsign")
    args = p.parse_args(argv)
    if args.count < 0:
        p.error("--count must be >= 0")
    args.command = "ethsign"
    return args


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    setup = setup_kv if args.command == "kv" else setup_ethsign
    return servertools.print_json_result("setup_vault", lambda: setup(args), (VaultError, requests.RequestException))


if __name__ == "__main__":
    sys.exit(main())
