"""Namespaces: the plugin's accounts live per (namespace, mount); policies, tokens and AppRole are the namespace's."""

from conftest import EIP155_ADDRESS, EIP155_KEY

TX = {"data": "0x", "nonce": "0", "to": "0x" + "55" * 20}


def test_namespace_isolation(stack, setup):
    ns = stack.setup("--namespace", "ns1", "--count", "2")
    assert ns["namespace"] == "ns1"
    mine = ns["accounts"]
    keys = stack.plugin("LIST", "accounts", token=ns["userToken"], namespace="ns1").json()["data"]["keys"]
    assert sorted(keys) == sorted(mine)
    root_keys = stack.plugin("LIST", "accounts").json()["data"]["keys"]
    assert not set(mine) & set(root_keys)
    assert EIP155_ADDRESS in root_keys and EIP155_ADDRESS not in keys
    r = stack.plugin("GET", f"accounts/{mine[0]}")  # root namespace: not there
    assert r.status == 500 and b"Account does not exist" in r.body
    r = stack.sign(mine[0], TX, token=ns["userToken"], namespace="ns1")
    assert r.status == 200 and r.header("X-Vault-Namespace") == "ns1"
    # the namespace in the path instead of the header
    r = stack.raw("POST", f"/v1/ns1/{stack.mount}/accounts/{mine[0]}/sign", TX, token=ns["userToken"])
    assert r.status == 200
    # a namespace token is nothing in the root namespace, a root-namespace user token nothing in ns1
    r = stack.plugin("LIST", "accounts", token=ns["userToken"])
    assert r.status == 403
    r = stack.sign(mine[0], TX, token=setup["userToken"], namespace="ns1")
    assert r.status == 403


def test_nested_namespace_and_import(stack):
    out = stack.setup("--namespace", "team/eth", "--count", "0", "--import", EIP155_KEY)
    assert out["accounts"] == [EIP155_ADDRESS]
    r = stack.sign(EIP155_ADDRESS, dict(TX, chainId="1"), token=out["userToken"], namespace="team/eth")
    assert r.status == 200
    r = stack.raw("LIST", f"/v1/eth/{stack.mount}/accounts", token=out["userToken"], namespace="team")
    assert r.json()["data"]["keys"] == [EIP155_ADDRESS]


def test_unknown_namespace(stack):
    r = stack.plugin("LIST", "accounts", namespace="no-such-ns")
    assert (r.status, r.body) == (404, b'{"errors":["namespace not found"]}\n')
    assert r.header("X-Vault-Namespace") == "no-such-ns"
    # a path that only looks like <namespace>/<mount>/... goes to OpenBao as it is
    r = stack.raw("GET", f"/v1/secret/data/{stack.mount}/x", token=stack.root)
    assert r.status == 404 and b"errors" in r.body


def test_approle_in_namespace(stack):
    ns = stack.setup("--namespace", "ns2", "--count", "1")
    c = stack.hvac(namespace="ns2")
    token = c.auth.approle.login(role_id=ns["approle"]["roleId"],
                                 secret_id=ns["approle"]["secretId"])["auth"]["client_token"]
    r = stack.sign(ns["accounts"][0], TX, token=token, namespace="ns2")
    assert r.status == 200
