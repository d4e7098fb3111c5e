"""Authorization: the plugin double asks the real OpenBao (capabilities-self with the caller's token) and applies
Vault's operation -> capability mapping; tokens, AppRole, renewal and expiry are OpenBao's own."""

import time

import hvac
import pytest

from conftest import BAD_TOKEN, DENIED, EIP155_ADDRESS

TX = {"data": "0x", "nonce": "0", "to": "0x" + "44" * 20, "chainId": "1"}


def test_user_policy_lists_reads_and_signs(stack, setup):
    user = setup["userToken"]
    keys = stack.plugin("LIST", "accounts", token=user).json()["data"]["keys"]
    assert set(setup["accounts"]) <= set(keys)
    assert stack.plugin("GET", f"accounts/{EIP155_ADDRESS}", token=user).status == 200
    r = stack.sign(EIP155_ADDRESS, TX, token=user)
    assert r.status == 200 and r.json()["data"]["signed_transaction"].startswith("0x")


def test_user_policy_cannot_export_delete_or_create(stack, setup):
    user = setup["userToken"]
    for method, path, body in (("GET", f"export/accounts/{EIP155_ADDRESS}", None),
                               ("DELETE", f"accounts/{EIP155_ADDRESS}", None),
                               ("POST", "accounts", {})):
        r = stack.plugin(method, path, body, token=user)
        assert (r.status, r.body) == (403, DENIED), (method, path)


def test_denied_body_is_openbaos(stack, setup):
    # the same token on a real OpenBao path it may not use
    real = stack.raw("GET", "/v1/sys/mounts", token=setup["userToken"])
    assert (real.status, real.body) == (403, DENIED)
    assert [k for k, _ in real.headers] == [k for k, _ in stack.plugin(
        "GET", f"export/accounts/{EIP155_ADDRESS}", token=setup["userToken"]).headers]


def test_admin_policy(stack, setup):
    admin = setup["adminToken"]
    r = stack.plugin("POST", "accounts", {}, token=admin)
    assert r.status == 200
    addr = r.json()["data"]["address"]
    assert stack.plugin("GET", f"export/accounts/{addr}", token=admin).status == 200
    assert stack.sign(addr, TX, token=admin).status == 200
    assert stack.plugin("DELETE", f"accounts/{addr}", token=admin).status == 204


def test_missing_invalid_token(stack, setup):
    for token in ("", "s.not-a-token"):
        r = stack.raw("POST", f"/v1/{stack.mount}/accounts/{EIP155_ADDRESS}/sign", TX, token=token or None)
        assert (r.status, r.body) == (403, BAD_TOKEN)
    # Authorization: Bearer works like X-Vault-Token
    r = stack.raw("POST", f"/v1/{stack.mount}/accounts/{EIP155_ADDRESS}/sign", TX,
                  headers={"Authorization": f"Bearer {setup['userToken']}"})
    assert r.status == 200


def test_capability_mapping(stack, setup):
    """sign is POST on a path with an ExistenceCheck that never finds anything -> "create"; "update" alone
    cannot sign. The ACL is checked before routing, so "read" on the sign path gives 405 (GET is no operation of it),
    while a field that does not convert is refused (400) even before the ACL."""
    root = stack.root
    m = stack.mount
    policy = f'path "{m}/accounts/*" {{ capabilities = ["update", "read"] }}'
    stack.raw("PUT", "/v1/sys/policies/acl/update-only", {"policy": policy}, token=root)
    tok = stack.raw("POST", "/v1/auth/token/create", {"policies": ["update-only"]}, token=root).json()
    tok = tok["auth"]["client_token"]
    r = stack.sign(EIP155_ADDRESS, TX, token=tok)
    assert (r.status, r.body) == (403, DENIED)
    assert stack.plugin("GET", f"accounts/{EIP155_ADDRESS}/sign", token=tok).status == 405
    # POST to an existing accounts/<address> is an "update" (ExistenceCheck finds it) -> allowed -> 405
    assert stack.plugin("POST", f"accounts/{EIP155_ADDRESS}", {}, token=tok).status == 405
    assert stack.sign(EIP155_ADDRESS, dict(TX, gas=[1]), token=tok).status == 400
    # the user policy has "create" on accounts/*: an existing accounts/<address> needs "update" -> 403
    assert stack.plugin("POST", f"accounts/{EIP155_ADDRESS}", {}, token=setup["userToken"]).status == 403


def test_approle_login_renew_lookup_through_the_proxy(stack, setup):
    c = stack.hvac()
    login = c.auth.approle.login(role_id=setup["approle"]["roleId"], secret_id=setup["approle"]["secretId"])
    token = login["auth"]["client_token"]
    assert "ethsign-user" in login["auth"]["policies"]
    c.token = token
    assert c.auth.token.lookup_self()["data"]["policies"] == ["default", "ethsign-user"]
    renewed = c.auth.token.renew_self(increment="30m")
    assert renewed["auth"]["client_token"] == token
    assert stack.sign(EIP155_ADDRESS, TX, token=token).status == 200
    keys = c.list(f"{stack.mount}/accounts")["data"]["keys"]
    assert EIP155_ADDRESS in keys
    with pytest.raises(hvac.exceptions.Forbidden):
        c.read(f"{stack.mount}/export/accounts/{EIP155_ADDRESS}")


def test_short_ttl_token_expires(stack):
    out = stack.setup("--count", "0", "--role", "short", "--policy-prefix", "ethsign-short",
                      "--token-ttl", "2s", "--token-max-ttl", "3s")
    c = stack.hvac()
    token = c.auth.approle.login(role_id=out["approle"]["roleId"],
                                 secret_id=out["approle"]["secretId"])["auth"]["client_token"]
    assert stack.plugin("LIST", "accounts", token=token).status == 200
    assert stack.sign(EIP155_ADDRESS, TX, token=token).status == 200
    time.sleep(3.2)
    r = stack.sign(EIP155_ADDRESS, TX, token=token)
    assert (r.status, r.body) == (403, BAD_TOKEN)
    assert stack.raw("GET", "/v1/auth/token/lookup-self", token=token).status == 403
