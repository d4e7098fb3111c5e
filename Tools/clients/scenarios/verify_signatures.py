#!/usr/bin/env python3
"""verify_signatures: every signing method of the gateway, checked with eth-account.

  verify_signatures.py --url ws://127.0.0.1:PORT/ --from 0xA --chain-id N [--timeout 30]
  verify_signatures.py --self-test 0xKEY --chain-id N          (no gateway: signs locally)

Through the gateway (one WebSocket, raw JSON-RPC):
  * personal_sign [message_hex, address] (MetaMask order) for an empty message, text, 32 bytes and
    1 KiB; eth_sign [address, message_hex] for the same; each recovered with
    Account.recover_message(encode_defunct(primitive=msg)) must be --from;
  * eth_signTypedData_v4 [address, object] for EIP-712 documents: the spec's Mail (nested struct),
    one with arrays (struct[], uint256[], string[], bytes32[], bytes, bool, int), one with an array
    of structs that nest structs and a domain with salt (uints beyond int64 are sent as hex / decimal
    strings, as ethers / viem do; small ones as JSON numbers); the Mail document once more as a JSON
    string (as MetaMask sends it); recovered with encode_typed_data(full_message=doc);
  * eth_signTransaction for an EIP-1559 transfer (from, to, value, gas, fees, nonce; no chainId):
    the answer is {"raw", "tx"}; Account.recover_transaction(raw) must be --from, the decoded tx
    must be type 2 with chainId == --chain-id and the fields that were sent, tx.hash = keccak(raw);
  * the four methods with an address the wallet does not hold -> error code 4100 whose message
    contains that address (any case).
`--self-test KEY` answers the same requests locally with eth-account (and an address from KEY),
runs the identical checks, and also checks that the checker rejects a signature over another
message, so the checker itself is proven.
RESULT: {"from", "chain_id", "checks": {name: "pass"}, "count"}.
"""

import argparse
import asyncio
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import DEFAULT_TIMEOUT, RawRpc, ScenarioFailure, check, fail, normalize_key, run_main  # noqa: E402

import websockets  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_account.messages import encode_defunct, encode_typed_data  # noqa: E402
from eth_account.typed_transactions import TypedTransaction  # noqa: E402
from eth_utils import keccak, to_checksum_address  # noqa: E402
from hexbytes import HexBytes  # noqa: E402

TO = "0x000000000000000000000000000000000000dEaD"
STRANGER = to_checksum_address("0x5eeded0000000000000000000000000000c0ffee")  # an address no wallet should hold


def h(b):
    return "0x" + bytes(b).hex()


MESSAGES = {
    "empty": b"",
    "text": "Hello SignerGateway \u2713 \u00e9".encode(),
    "bytes32": bytes(range(0x20, 0x40)),
    "1KiB": bytes((i * 7 + 3) % 256 for i in range(1024)),
}

MAIL = {  # the EIP-712 example (nested Person struct in Mail)
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [{"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
                 {"name": "contents", "type": "string"}],
    },
    "primaryType": "Mail",
    "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
               "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
    },
}

ARRAYS = {  # arrays of atoms and of structs, dynamic bytes, bool, negative int
    "types": {
        "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallets", "type": "address[]"}],
        "Group": [
            {"name": "name", "type": "string"}, {"name": "members", "type": "Person[]"},
            {"name": "amounts", "type": "uint256[]"}, {"name": "tags", "type": "string[]"},
            {"name": "hashes", "type": "bytes32[2]"}, {"name": "blob", "type": "bytes"},
            {"name": "active", "type": "bool"}, {"name": "delta", "type": "int64"}],
    },
    "primaryType": "Group",
    "domain": {"name": "Arrays", "chainId": 1337},
    "message": {
        "name": "core",
        "members": [
            {"name": "Alice", "wallets": ["0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
                                          "0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF"]},
            {"name": "Bob", "wallets": []},
        ],
        "amounts": [0, 1, 1000000000000000000, "0xab54a98ceb1f0ad2"],  # big values as strings (ethers: hex)
        "tags": ["a", "", "\u00fcml\u00e4ut"],
        "hashes": ["0x" + "11" * 32, "0x" + "ab" * 32],
        "blob": "0x00ff10",
        "active": True,
        "delta": -42,
    },
}

NESTED = {  # struct -> struct[] -> struct, domain with salt, fixed array of addresses
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"},
            {"name": "salt", "type": "bytes32"}],
        "Asset": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "Leg": [{"name": "give", "type": "Asset"}, {"name": "get", "type": "Asset"}, {"name": "deadline", "type": "uint64"}],
        "Order": [{"name": "maker", "type": "address"}, {"name": "legs", "type": "Leg[]"},
                  {"name": "witnesses", "type": "address[2]"}, {"name": "memo", "type": "string"}],
    },
    "primaryType": "Order",
    "domain": {"name": "Nested", "version": "2", "chainId": 1337,
               "verifyingContract": "0x1111111111111111111111111111111111111111", "salt": "0x" + "42" * 32},
    "message": {
        "maker": "0x2222222222222222222222222222222222222222",
        "legs": [
            {"give": {"token": "0x3333333333333333333333333333333333333333", "amount": 5},
             "get": {"token": "0x4444444444444444444444444444444444444444", "amount": 7}, "deadline": 1700000000},
            {"give": {"token": "0x4444444444444444444444444444444444444444", "amount": 0},
             "get": {"token": "0x3333333333333333333333333333333333333333", "amount": str(2**255)}, "deadline": 0},  # viem: decimal string
        ],
        "witnesses": ["0x5555555555555555555555555555555555555555", "0x6666666666666666666666666666666666666666"],
        "memo": "nested structs in an array",
    },
}

TYPED_DOCS = {"mail": MAIL, "arrays": ARRAYS, "nested": NESTED}


# ---- transports: the gateway over a WebSocket, or eth-account locally ----

class GatewayRpc(RawRpc):
    """The gateway over one WebSocket; `call` answers (result, None) or (None, error) like LocalSigner."""

    async def call(self, method, params):
        return await self.call_outcome(method, params)


class LocalSigner:
    """Answers like the gateway spec says, with eth-account (for --self-test)."""

    def __init__(self, key, chain_id):
        self.acct = Account.from_key(key)
        self.chain_id = chain_id

    def _mine(self, address):
        if address.lower() != self.acct.address.lower():
            return {"code": 4100, "message": f"the requested account {address.lower()} is not in the wallet"}
        return None

    async def call(self, method, params):
        if method == "personal_sign":
            msg_hex, addr = params
        elif method in ("eth_sign", "eth_signTypedData_v4"):
            addr, payload = params
        elif method == "eth_signTransaction":
            addr = params[0]["from"]
        else:
            return None, {"code": -32601, "message": f"the method {method} does not exist/is not available"}
        err = self._mine(addr)
        if err:
            return None, err
        if method == "personal_sign":
            return h(self.acct.sign_message(encode_defunct(hexstr=msg_hex)).signature), None
        if method == "eth_sign":
            return h(self.acct.sign_message(encode_defunct(hexstr=payload)).signature), None
        if method == "eth_signTypedData_v4":
            doc = json.loads(payload) if isinstance(payload, str) else payload
            return h(self.acct.sign_typed_data(full_message=doc).signature), None
        tx = dict(params[0])
        tx.pop("from")
        tx = {k: (int(v, 16) if isinstance(v, str) and k not in ("to", "data", "input") else v) for k, v in tx.items()}
        tx["chainId"] = self.chain_id
        signed = self.acct.sign_transaction(tx)
        raw = h(signed.raw_transaction)
        tt = TypedTransaction.from_bytes(HexBytes(signed.raw_transaction)).as_dict()
        v, r, s = signed.v, signed.r, signed.s
        out_tx = {"type": "0x2", "chainId": hex(self.chain_id), "nonce": hex(tt["nonce"]), "to": tx["to"].lower(),
                  "gas": hex(tt["gas"]), "value": hex(tt["value"]), "input": "0x",
                  "maxFeePerGas": hex(tt["maxFeePerGas"]), "maxPriorityFeePerGas": hex(tt["maxPriorityFeePerGas"]),
                  "accessList": [], "v": hex(v), "r": hex(r), "s": hex(s), "yParity": hex(v), "hash": h(signed.hash)}
        return {"raw": raw, "tx": out_tx}, None


# ---- the checks ----

class Checks:
    def __init__(self, rpc, address, chain_id):
        self.rpc, self.address, self.chain_id = rpc, to_checksum_address(address), chain_id
        self.results = {}

    def _sig(self, name, sig):
        check(isinstance(sig, str) and sig.startswith("0x") and len(sig) == 132, f"{name}: signature format",
              "0x + 65 bytes hex", sig)
        v = int(sig[-2:], 16)
        check(v in (27, 28), f"{name}: signature v is 27/28 (as geth/MetaMask return it)", "27 or 28", v)
        return sig

    async def ok(self, name, method, params):
        result, err = await self.rpc.call(method, params)
        check(err is None, f"{name}: {method} succeeds", "a result", err)
        return result

    def recovered_is_from(self, name, recovered):
        check(to_checksum_address(recovered) == self.address, f"{name}: recovered signer", self.address, recovered)
        self.results[name] = "pass"

    async def run(self):
        for label, msg in MESSAGES.items():
            name = f"personal_sign/{label}"
            sig = self._sig(name, await self.ok(name, "personal_sign", [h(msg), self.address]))
            self.recovered_is_from(name, Account.recover_message(encode_defunct(primitive=msg), signature=sig))
        for label, msg in MESSAGES.items():
            name = f"eth_sign/{label}"
            sig = self._sig(name, await self.ok(name, "eth_sign", [self.address, h(msg)]))
            self.recovered_is_from(name, Account.recover_message(encode_defunct(primitive=msg), signature=sig))
        for label, doc in TYPED_DOCS.items():
            name = f"eth_signTypedData_v4/{label}"
            sig = self._sig(name, await self.ok(name, "eth_signTypedData_v4", [self.address, doc]))
            self.recovered_is_from(name, Account.recover_message(encode_typed_data(full_message=doc), signature=sig))
        name = "eth_signTypedData_v4/mail-as-json-string"
        sig = self._sig(name, await self.ok(name, "eth_signTypedData_v4", [self.address, json.dumps(MAIL)]))
        self.recovered_is_from(name, Account.recover_message(encode_typed_data(full_message=MAIL), signature=sig))
        await self.sign_transaction()
        await self.unknown_account()
        return self.results

    async def sign_transaction(self):
        name = "eth_signTransaction/eip1559"
        sent = {"from": self.address, "to": TO, "value": hex(123456789), "gas": hex(21000),
                "maxFeePerGas": hex(3 * 10**9), "maxPriorityFeePerGas": hex(10**9), "nonce": hex(7)}
        res = await self.ok(name, "eth_signTransaction", [sent])
        check(isinstance(res, dict) and isinstance(res.get("raw"), str) and isinstance(res.get("tx"), dict),
              f"{name}: answer shape", '{"raw": "0x...", "tx": {...}}', res)
        raw = bytes.fromhex(res["raw"][2:])
        check(raw[:1] == b"\x02", f"{name}: raw is an EIP-1559 envelope", "0x02...", res["raw"][:10])
        self.recovered_is_from(name, Account.recover_transaction(raw))
        dec = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        check(dec["chainId"] == self.chain_id, f"{name}: chainId of the signed tx", self.chain_id, dec["chainId"])
        expect = {"nonce": 7, "gas": 21000, "value": 123456789, "maxFeePerGas": 3 * 10**9,
                  "maxPriorityFeePerGas": 10**9}
        got = {k: dec[k] for k in expect}
        check(got == expect, f"{name}: signed fields", expect, got)
        check(h(dec["to"]).lower() == TO.lower(), f"{name}: to", TO.lower(), h(dec["to"]))
        tx = res["tx"]
        check(str(tx.get("hash", "")).lower() == h(keccak(raw)), f"{name}: tx.hash = keccak(raw)", h(keccak(raw)),
              tx.get("hash"))
        check(int(tx.get("chainId", "0x0"), 16) == self.chain_id and int(tx.get("type", "0x0"), 16) == 2,
              f"{name}: tx object chainId/type", (hex(self.chain_id), "0x2"), (tx.get("chainId"), tx.get("type")))
        check(int(tx.get("nonce", "0x0"), 16) == 7 and int(tx.get("value", "0x0"), 16) == 123456789,
              f"{name}: tx object nonce/value", ("0x7", hex(123456789)), (tx.get("nonce"), tx.get("value")))
        self.results[name + "/chainId"] = "pass"

    async def unknown_account(self):
        stranger = STRANGER
        calls = {
            "personal_sign": [h(b"hi"), stranger],
            "eth_sign": [stranger, h(b"hi")],
            "eth_signTypedData_v4": [stranger, MAIL],
            "eth_signTransaction": [{"from": stranger, "to": TO, "value": "0x1", "gas": hex(21000),
                                     "maxFeePerGas": hex(3 * 10**9), "maxPriorityFeePerGas": hex(10**9),
                                     "nonce": "0x0"}],
        }
        for method, params in calls.items():
            name = f"unknown-account/{method}"
            result, err = await self.rpc.call(method, params)
            check(err is not None, f"{name}: refused", "error 4100", result)
            check(err.get("code") == 4100, f"{name}: error code", 4100, err)
            check(stranger.lower() in str(err.get("message", "")).lower(), f"{name}: message names the address",
                  f"contains {stranger.lower()}", err.get("message"))
            self.results[name] = "pass"


async def self_check_rejects(checks):
    """The checker must notice a signature over something else (here: another message)."""
    wrong = LocalSigner(bytes(checks.rpc.acct.key), checks.chain_id)
    other = Checks(wrong, checks.address, checks.chain_id)
    sig = await other.ok("x", "personal_sign", [h(b"something else"), checks.address])
    try:
        other.recovered_is_from("tamper", Account.recover_message(encode_defunct(primitive=b"the message"), signature=sig))
    except ScenarioFailure:
        return "pass"
    fail("self-test: a signature over another message was accepted", "rejected", "accepted")


async def scenario(args):
    if args.self_test:
        signer = LocalSigner(normalize_key(args.self_test), args.chain_id)
        checks = Checks(signer, signer.acct.address, args.chain_id)
        results = await checks.run()
        results["self-test/tampered-signature-rejected"] = await self_check_rejects(checks)
        return {"from": checks.address, "chain_id": args.chain_id, "checks": results, "count": len(results),
                "mode": "self-test"}
    if not args.url or not getattr(args, "from"):
        fail("--url and --from are required (or --self-test KEY)")
    async with websockets.connect(args.url, open_timeout=args.timeout, max_size=None) as ws:
        checks = Checks(GatewayRpc(ws, args.timeout), getattr(args, "from"), args.chain_id)
        accounts, err = await checks.rpc.call("eth_accounts", [])
        check(err is None and isinstance(accounts, list), "eth_accounts", "a list", err or accounts)
        check(checks.address.lower() in [a.lower() for a in accounts], "eth_accounts lists --from",
              checks.address, accounts)
        results = await checks.run()
    return {"from": checks.address, "chain_id": args.chain_id, "checks": results, "count": len(results),
            "mode": "gateway"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="ws://127.0.0.1:PORT/ of the gateway")
    p.add_argument("--from", help="an address the gateway holds")
    p.add_argument("--chain-id", type=int, required=True)
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("--self-test", metavar="KEY", help="sign locally with this key instead of a gateway")
    args = p.parse_args(argv)
    return run_main(lambda: scenario(args))


if __name__ == "__main__":
    sys.exit(main())
