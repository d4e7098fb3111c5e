#!/usr/bin/env python3
"""keystore_interop: Web3 Secret Storage v3 files written and read by eth-account.

  keystore_interop.py encrypt --dir D --password P --count N [--kdf scrypt|pbkdf2] [--light]
  keystore_interop.py decrypt --file F --password P

`encrypt` makes N random accounts and writes `Account.encrypt(key, P, kdf=..., iterations=...)` into
D under geth's file name `UTC--<yyyy-mm-ddThh-mm-ss.nnnnnnnnnZ>--<lowercase address, no 0x>`.
Default work factors are eth-account's (scrypt n=262144, pbkdf2 c=1000000); `--light` uses scrypt
n=4096 / pbkdf2 c=1000 so tests stay fast. RESULT: {"accounts": [{"address", "privateKey", "file"}]}.

`decrypt` reads a keystore file written by anyone (e.g. by the gateway) and decrypts it with
`Account.decrypt`. RESULT: {"address": checksummed address of the decrypted key, "privateKey",
"kdf", "declaredAddress": the file's "address" field (checksummed) or null}. A wrong password
(MAC mismatch) or a malformed file -> `FAIL: ...` on stderr, exit 1. A declared address that
differs from the key's address is also a failure.
"""

import argparse
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import check, fail, report  # noqa: E402

from eth_account import Account  # noqa: E402
from eth_utils import to_checksum_address  # noqa: E402

LIGHT_WORK = {"scrypt": 4096, "pbkdf2": 1000}


def geth_file_name(address, now=None):
    """geth's keyFileName: "UTC--" + ts.Format("2006-01-02T15-04-05.000000000Z07:00") + "--" + hex(addr)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H-%M-%S") + f".{now.microsecond:06d}000Z"
    return f"UTC--{stamp}--{address[2:].lower()}"


def cmd_encrypt(args):
    check(args.count >= 1, "--count must be >= 1", ">= 1", args.count)
    os.makedirs(args.dir, exist_ok=True)
    iterations = LIGHT_WORK[args.kdf] if args.light else None
    accounts = []
    for _ in range(args.count):
        acct = Account.create()
        keyfile = Account.encrypt(acct.key, args.password, kdf=args.kdf, iterations=iterations)
        name = geth_file_name(acct.address)
        path = os.path.join(os.path.abspath(args.dir), name)
        # never overwrite (two files in the same microsecond for the same address cannot happen,
        # but be explicit), and write via a temp file like geth does
        check(not os.path.exists(path), "keystore file name collision", "a new file", path)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(keyfile, f)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        accounts.append({"address": acct.address, "privateKey": "0x" + bytes(acct.key).hex(), "file": path})
    return {"accounts": accounts, "kdf": args.kdf,
            "iterations": iterations if iterations is not None else "default"}


def cmd_decrypt(args):
    try:
        with open(args.file) as f:
            keyfile = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read keystore file {args.file}: {e}")
    check(isinstance(keyfile, dict), "keystore file is a JSON object", "object", type(keyfile).__name__)
    crypto = keyfile.get("crypto", keyfile.get("Crypto"))
    check(isinstance(crypto, dict), "keystore file has a crypto object", "crypto {...}", list(keyfile))
    kdf = crypto.get("kdf")
    check(kdf in ("scrypt", "pbkdf2"), "crypto.kdf", "scrypt or pbkdf2", kdf)
    check(keyfile.get("version") == 3, "keystore version", 3, keyfile.get("version"))
    try:
        key = Account.decrypt(keyfile, args.password)
    except ValueError as e:
        if "MAC mismatch" in str(e):
            fail(f"wrong password for {args.file} (MAC mismatch)", "a MAC that matches the password",
                 "MAC mismatch")
        fail(f"cannot decrypt {args.file}: {e}")
    acct = Account.from_key(key)
    declared = keyfile.get("address")
    declared_cs = None
    if declared is not None:
        d = declared if declared.startswith("0x") else "0x" + declared
        try:
            declared_cs = to_checksum_address(d)
        except ValueError:
            fail("keystore address field is not an address", "40 hex digits", declared)
        check(declared_cs == acct.address, "the file's address field matches the decrypted key",
              acct.address, declared_cs)
    return {"address": acct.address, "privateKey": "0x" + bytes(key).hex(), "kdf": kdf,
            "declaredAddress": declared_cs}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encrypt", help="write N random accounts as v3 keystore files")
    e.add_argument("--dir", required=True)
    e.add_argument("--password", required=True)
    e.add_argument("--count", type=int, required=True)
    e.add_argument("--kdf", choices=["scrypt", "pbkdf2"], default="scrypt")
    e.add_argument("--light", action="store_true", help="scrypt n=4096 / pbkdf2 c=1000")
    d = sub.add_parser("decrypt", help="decrypt one v3 keystore file")
    d.add_argument("--file", required=True)
    d.add_argument("--password", required=True)
    args = p.parse_args(argv)
    return report(lambda: cmd_encrypt(args) if args.cmd == "encrypt" else cmd_decrypt(args))


if __name__ == "__main__":
    sys.exit(main())
