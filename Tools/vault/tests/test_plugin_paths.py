"""The plugin double's paths, encodings and errors against what backend/*.go does, behind the real OpenBao."""

import json
import re

import pytest
import rlp
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from conftest import EIP155_ADDRESS, EIP155_KEY

EIP155_TX = {"nonce": "9", "gasPrice": "20000000000", "gas": "21000", "to": "0x" + "35" * 20,
             "value": "1000000000000000000", "data": "0x", "chainId": "1"}
# EIP-155's example: the signed transaction for EIP155_KEY.
EIP155_RAW = ("0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef6134"
              "0bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc6"
              "4214b297fb1966a3b6d83")
EIP155_HASH = "0x33469b22e9f636356c4160a87eb19df52b7412e8eac32a4a55ffe88ea8350788"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def err500(msg):
    return ('{"errors":["1 error occurred:\\n\\t* ' + msg + '\\n\\n"]}\n').encode()


def decode(raw_hex):
    return Transaction.from_bytes(bytes.fromhex(raw_hex[2:])).as_dict()


def signed(stack, tx, address=EIP155_ADDRESS):
    r = stack.sign(address, tx)
    assert r.status == 200, r
    return r.json()["data"]


def test_envelope_and_headers_like_openbao(stack, setup):
    kv = stack.raw("GET", "/v1/sys/mounts", token=stack.root)  # a real OpenBao answer, same server
    r = stack.plugin("GET", f"accounts/{EIP155_ADDRESS}")
    assert r.status == 200
    assert [k for k, _ in r.headers] == [k for k, _ in kv.headers]
    for h in ("Cache-Control", "Content-Type", "Strict-Transport-Security"):
        assert r.header(h) == kv.header(h)
    body = r.json()
    assert list(body) == ["request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info",
                          "warnings", "auth"]
    assert list(body) == [k for k in json.loads(stack.raw("GET", "/v1/secret/config", token=stack.root).body)]
    assert UUID.fullmatch(body["request_id"])
    assert body["data"] == {"address": EIP155_ADDRESS}
    assert (body["lease_id"], body["renewable"], body["lease_duration"], body["wrap_info"], body["warnings"],
            body["auth"]) == ("", False, 0, None, None, None)
    assert r.body.endswith(b"}\n") and b" " not in r.body


def test_create_import_list_read_export_delete(stack, setup):
    assert setup["accounts"][0] == EIP155_ADDRESS
    r = stack.plugin("POST", "accounts", {})
    assert r.status == 200
    new = r.json()["data"]["address"]
    assert re.fullmatch(r"0x[0-9a-f]{40}", new)
    exported = stack.plugin("GET", f"export/accounts/{new}").json()["data"]
    assert sorted(exported) == ["address", "privateKey"]
    assert re.fullmatch(r"[0-9a-f]{64}", exported["privateKey"])  # no 0x, lower case
    assert Account.from_key(exported["privateKey"]).address.lower() == new

    for method, path in (("LIST", "accounts"), ("GET", "accounts?list=true"), ("LIST", "accounts/")):
        r = stack.plugin(method, path)
        assert r.status == 200, r
        keys = r.json()["data"]["keys"]
        assert keys == sorted(keys) and new in keys and EIP155_ADDRESS in keys

    # Import: the last 64 hex characters of privateKey (regexp [0-9a-fA-F]{64}$), kept as given (case too).
    upper = "0x" + "AB" * 32
    r = stack.plugin("POST", "accounts", {"privateKey": upper})
    addr = r.json()["data"]["address"]
    assert addr == Account.from_key("ab" * 32).address.lower()
    assert stack.plugin("GET", f"export/accounts/{addr}").json()["data"]["privateKey"] == "AB" * 32
    # without 0x prefix in the path too (retrieveAccount adds it)
    assert stack.plugin("GET", f"accounts/{addr[2:]}").json()["data"]["address"] == addr

    r = stack.plugin("DELETE", f"accounts/{addr}")
    assert (r.status, r.body) == (204, b"")
    assert stack.plugin("GET", f"accounts/{addr}").body == err500("Account does not exist")
    # deleting again, or an unknown account: nil response -> 204
    assert stack.plugin("DELETE", f"accounts/{addr}").status == 204
    stack.plugin("DELETE", f"accounts/{new}")


def test_import_errors(stack, setup):
    r = stack.plugin("POST", "accounts", {"privateKey": "1234"})
    assert (r.status, r.body) == (500, err500("privateKey must be a 32-byte hexidecimal string"))
    r = stack.plugin("POST", "accounts", {"privateKey": "00" * 32})
    assert (r.status, r.body) == (500, err500("Error reconstructing private key from input hex"))
    r = stack.plugin("POST", "accounts", {"privateKey": ["x"]})  # HandleRequest's Validate error: a plain error
    assert r.status == 500
    assert r.body == err500("error converting input [x] for field \\\"privateKey\\\": '' expected type 'string', "
                            "got unconvertible type '[]interface {}', value: '[x]'")


def test_unknown_malformed_and_mixed_case_accounts(stack, setup):
    unknown = "0x" + "12" * 20
    r = stack.sign(unknown, {"data": "0x"})
    assert (r.status, r.body) == (500, err500(f"Signing account {unknown} does not exist"))
    mixed = "0x9D8A62f656a8d1615c1294fd71e9cfb3e4855a4f"  # EIP155_ADDRESS, not lower-case: stored keys are
    r = stack.sign(mixed, {"data": "0x"})
    assert (r.status, r.body) == (500, err500(f"Signing account {mixed} does not exist"))
    assert stack.plugin("GET", f"accounts/{mixed}").body == err500("Account does not exist")
    assert stack.plugin("GET", f"export/accounts/{mixed}").body == err500("Account does not exist")
    r = stack.sign("foo", {"data": "0x"})
    assert (r.status, r.body) == (500, err500("Error retrieving signing account foo"))
    r = stack.plugin("GET", "accounts/foo")
    assert r.body == err500("Failed to retrieve the account, malformatted account address")
    assert stack.plugin("DELETE", "accounts/foo").status == 500


def test_sign_eip155_vector(stack, setup):
    out = signed(stack, EIP155_TX)
    assert out == {"signed_transaction": EIP155_RAW, "transaction_hash": EIP155_HASH}
    assert Account.recover_transaction(out["signed_transaction"]).lower() == EIP155_ADDRESS


def test_sign_json_numbers_decimal_and_hex_strings_are_the_same(stack, setup):
    as_numbers = dict(EIP155_TX, nonce=9, gasPrice=20000000000, gas=21000, value=1000000000000000000, chainId=1)
    as_hex = dict(EIP155_TX, nonce="0x9", gasPrice="0x4a817c800", gas="0X5208", value="0xde0b6b3a7640000",
                  chainId="0x1")
    for tx in (as_numbers, as_hex):
        assert signed(stack, tx)["signed_transaction"] == EIP155_RAW
    # booleans become "1"/"0" (mapstructure WeakDecode); negative numbers are taken absolute (ValidNumber: Abs)
    assert signed(stack, dict(EIP155_TX, chainId=True, nonce=-9))["signed_transaction"] == EIP155_RAW


def test_sign_chain_id_and_fields_decode_back(stack, setup):
    tx = {"nonce": "0x2a", "gasPrice": "1000000000", "gas": "50000", "to": "0x" + "ab" * 20, "value": "0x10",
          "data": "0xdeadbeef", "chainId": "1337"}
    out = signed(stack, tx)
    d = decode(out["signed_transaction"])
    assert (d["nonce"], d["gasPrice"], d["gas"], d["to"], d["value"], d["data"]) == (
        42, 10**9, 50000, bytes.fromhex("ab" * 20), 16, bytes.fromhex("deadbeef"))
    assert d["v"] in (1337 * 2 + 35, 1337 * 2 + 36)
    assert out["transaction_hash"] == "0x" + keccak(bytes.fromhex(out["signed_transaction"][2:])).hex()
    assert Account.recover_transaction(out["signed_transaction"]).lower() == EIP155_ADDRESS
    # the same bytes eth-account produces for the same legacy EIP-155 transaction
    ref = Account.sign_transaction({"nonce": 42, "gasPrice": 10**9, "gas": 50000,
                                    "to": to_checksum_address("0x" + "ab" * 20),
                                    "value": 16, "data": "0xdeadbeef", "chainId": 1337}, EIP155_KEY)
    assert out["signed_transaction"] == "0x" + ref.raw_transaction.hex()


def test_sign_chain_id_0_is_homestead(stack, setup):
    for tx in ({"data": "0x", "nonce": "1", "to": "0x" + "11" * 20},
               {"data": "0x", "nonce": "1", "to": "0x" + "11" * 20, "chainId": "0"},
               {"data": "0x", "nonce": "1", "to": "0x" + "11" * 20, "chainId": 0}):
        out = signed(stack, tx)
        d = decode(out["signed_transaction"])
        assert d["v"] in (27, 28)
        # defaults: gas 90000, gasPrice 0, value 0
        assert (d["nonce"], d["gas"], d["gasPrice"], d["value"], d["data"]) == (1, 90000, 0, 0, b"")
        assert Account.recover_transaction(out["signed_transaction"]).lower() == EIP155_ADDRESS
        # pre-EIP-155 signing hash: keccak(rlp([nonce, gasPrice, gas, to, value, data]))
        unsigned = rlp.encode([1, 0, 90000, bytes.fromhex("11" * 20), 0, b""])
        assert Account._recover_hash(keccak(unsigned), vrs=(d["v"], d["r"], d["s"])).lower() == EIP155_ADDRESS


def test_data_and_input(stack, setup):
    base = {"nonce": "0", "to": "0x" + "22" * 20, "chainId": "5"}
    via_data = signed(stack, dict(base, data="0xcafe"))
    assert signed(stack, dict(base, input="0xcafe")) == via_data
    assert signed(stack, dict(base, data="", input="0xcafe")) == via_data   # "" data falls back to input
    assert signed(stack, dict(base, data="0xcafe", input="0xbeef")) == via_data  # data wins
    assert signed(stack, dict(base, data="cafe")) == via_data  # "0x" added when len > 2 and no "0x"
    cases = [({}, "empty hex string"), ({"data": "ca"}, "hex string without 0x prefix"),
             ({"data": "0xcaf"}, "hex string of odd length"), ({"data": "0xzz"}, "invalid hex string"),
             ({"data": "0Xcafe"}, "invalid hex string"), ({"data": None}, "empty hex string")]
    for extra, msg in cases:
        r = stack.sign(EIP155_ADDRESS, dict(base, **extra))
        assert (r.status, r.body) == (500, err500(msg)), extra
    # data is decoded before the account is looked up
    assert stack.sign("0x" + "00" * 20, base).body == err500("empty hex string")


def test_contract_creation_and_lenient_to(stack, setup):
    d = decode(signed(stack, {"data": "0x6000", "nonce": "3"})["signed_transaction"])
    assert d["to"] == b""  # NewContractCreation
    # common.HexToAddress: short addresses are left-padded, garbage decodes to the zero address
    d = decode(signed(stack, {"data": "0x", "to": "0x1234"})["signed_transaction"])
    assert d["to"] == bytes(18) + b"\x12\x34"
    d = decode(signed(stack, {"data": "0x", "to": "xyz"})["signed_transaction"])
    assert d["to"] == bytes(20)


def test_number_errors_and_truncation(stack, setup):
    base = {"data": "0x", "to": "0x" + "33" * 20}
    for field, msg in (("value", "Invalid amount for the 'value' field"), ("chainId", "Invalid 'chainId' value"),
                       ("gas", "Invalid gas limit")):
        r = stack.sign(EIP155_ADDRESS, dict(base, **{field: "abc"}))
        assert (r.status, r.body) == (500, err500(msg)), field
    # gasPrice without a digit is nil -> 0; nonce without a digit panics in the plugin
    assert decode(signed(stack, dict(base, gasPrice="abc"))["signed_transaction"])["gasPrice"] == 0
    r = stack.sign(EIP155_ADDRESS, dict(base, nonce="abc"))
    assert (r.status, r.body) == (500, err500("plugin shutdown"))
    r = stack.sign(EIP155_ADDRESS, dict(base, gas="12abc"))  # math.MustParseBig256 panics
    assert (r.status, r.body) == (500, err500("plugin shutdown"))
    # gas and nonce are big.Int.Uint64(): the low 64 bits
    d = decode(signed(stack, dict(base, gas=str(2**64 + 21000), nonce=str(2**64 + 7)))["signed_transaction"])
    assert (d["gas"], d["nonce"]) == (21000, 7)
    # null is "" (the field is set): gas null -> ValidNumber("") = 0, not the 90000 default
    assert decode(signed(stack, dict(base, gas=None))["signed_transaction"])["gas"] == 0


def test_field_validation_error_is_400_from_the_existence_check(stack, setup):
    r = stack.sign(EIP155_ADDRESS, {"data": "0x", "gas": [1, 2]})
    assert r.status == 400
    assert r.body == (b'{"errors":["error converting input [1 2] for field \\"gas\\": \'\' expected type \'string\', '
                      b'got unconvertible type \'[]interface {}\', value: \'[1 2]\'"]}\n')
    r = stack.sign(EIP155_ADDRESS, {"data": {"a": 1}})
    assert r.status == 400 and b"map[a:1]" in r.body and b"map[string]interface {}" in r.body


def test_unsupported_paths_operations_and_bodies(stack, setup):
    r = stack.plugin("GET", "nothing")
    assert (r.status, r.body) == (404, err500("unsupported path"))
    r = stack.plugin("GET", f"accounts/{EIP155_ADDRESS}/sign")
    assert (r.status, r.body) == (405, err500("unsupported operation"))
    r = stack.plugin("GET", "accounts")
    assert (r.status, r.body) == (405, err500("unsupported operation"))
    r = stack.plugin("POST", f"accounts/{EIP155_ADDRESS}", {})  # exists -> update -> no callback
    assert r.status == 405
    r = stack.plugin("BREW", "accounts")
    assert (r.status, r.body) == (405, b'{"errors":[]}\n')
    r = stack.plugin("POST", "accounts", "{not json")
    assert r.status == 400 and r.json()["errors"][0].startswith("failed to decode JSON input: ")
    r = stack.plugin("POST", "accounts", "[1]")
    assert r.json() == {"errors": ["failed to decode JSON input: json: cannot unmarshal array into Go value of "
                                   "type map[string]interface {}"]}
    r = stack.plugin("GET", "accounts?list=maybe")
    assert (r.status, r.body) == (400, b'{"errors":[]}\n')
    # a form body works as in OpenBao
    r = stack.sign(EIP155_ADDRESS, "data=0x&nonce=9&gasPrice=20000000000&gas=21000&to=0x" + "35" * 20
                   + "&value=1000000000000000000&chainId=1",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.json()["data"]["signed_transaction"] == EIP155_RAW


def test_empty_list_is_404_with_no_errors(stack, setup):
    stack.setup("--namespace", "empty-ns", "--count", "0")
    r = stack.plugin("LIST", "accounts", namespace="empty-ns")
    assert (r.status, r.body) == (404, b'{"errors":[]}\n')
    assert r.header("X-Vault-Namespace") == "empty-ns"
