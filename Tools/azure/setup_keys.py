#!/usr/bin/env python3
"""setup_keys: creates (or imports) N secp256k1 (P-256K) keys in a running azure_server.py, through Microsoft's
own SDK (azure-keyvault-keys + azure-identity), and prints what a test needs as ONE JSON object on stdout.
Run with Tools/azure/.venv/bin/python.

Connection options (every subcommand):
  --vault https://127.0.0.1:PORT --ca CA.pem --tenant T --client-id ID --client-secret S
  [--authority URL]   default: the vault URL (azure_server serves both on one port)

  setup_keys.py CONNECTION [--count 1] [--prefix gateway-test] [--hsm] [--private-key HEX ...]
      key i (i = 0..N-1) is named <prefix>-<i>. With --private-key (32-byte hex, repeatable) key i is imported
      from the i-th private key (PUT /keys/{name}); the others are created (POST /keys/{name}/create,
      kty EC, or EC-HSM with --hsm, crv P-256K, key_ops sign+verify). N = max(--count, number of keys given).
      Prints {"keys": [{"name", "version", "kid", "address", "publicKey"}]}: address = 0x + last 20 bytes of
      keccak256(x || y), lower-case hex; publicKey = "04" + x + y in hex.

  setup_keys.py delete  CONNECTION --name NAME [--purge]
      DELETE /keys/{name} (soft delete; --purge also purges it, so the name can be reused). Prints
      {"name", "deleted": true, "purged": bool}.
  setup_keys.py disable CONNECTION --name NAME [--version V]
  setup_keys.py enable  CONNECTION --name NAME [--version V]
      PATCH /keys/{name}/{version} with attributes.enabled (default: the latest version). Prints
      {"name", "version", "enabled"}.

Exit code 0 on success; on an Azure or connection error, 1 with the error on stderr; on bad arguments, 2.
"""

import argparse
import os
import sys

# servertools (Tools/shared, stdlib only): the JSON-line-or-error ending every tool's setup script shares.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shared"))
import servertools  # noqa: E402

API_VERSION = "7.4"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def eth_address(x, y):
    from Crypto.Hash import keccak

    assert len(x) == 32 and len(y) == 32
    return "0x" + keccak.new(digest_bits=256, data=x + y).digest()[-20:].hex()


def key_client(args):
    from azure.identity import ClientSecretCredential
    from azure.keyvault.keys import KeyClient

    credential = ClientSecretCredential(args.tenant, args.client_id, args.client_secret,
                                        authority=args.authority or args.vault, disable_instance_discovery=True,
                                        connection_verify=args.ca)
    # verify_challenge_resource=False: the challenge names https://vault.azure.net, the vault is on 127.0.0.1.
    return KeyClient(args.vault, credential, api_version=API_VERSION, verify_challenge_resource=False,
                     connection_verify=args.ca)


def describe(key):
    x, y = bytes(key.key.x).rjust(32, b"\0"), bytes(key.key.y).rjust(32, b"\0")
    return {"name": key.name, "version": key.properties.version, "kid": key.id, "address": eth_address(x, y),
            "publicKey": "04" + x.hex() + y.hex()}


def setup(args):
    from azure.keyvault.keys import JsonWebKey, KeyCurveName, KeyOperation, KeyType
    from cryptography.hazmat.primitives.asymmetric import ec

    client = key_client(args)
    keys = []
    for i in range(max(args.count, len(args.private_key))):
        name = f"{args.prefix}-{i}"
        ops = [KeyOperation.sign, KeyOperation.verify]
        if i < len(args.private_key):
            d = args.private_key[i]
            numbers = ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256K1()).public_key().public_numbers()
            jwk = JsonWebKey(kty=KeyType.ec, crv=KeyCurveName.p_256_k, key_ops=ops, d=d,
                             x=numbers.x.to_bytes(32, "big"), y=numbers.y.to_bytes(32, "big"))
            key = client.import_key(name, jwk, hardware_protected=args.hsm)
        else:
            key = client.create_ec_key(name, curve=KeyCurveName.p_256_k, key_operations=ops,
                                       hardware_protected=args.hsm)
        keys.append(describe(key))
    return {"keys": keys}


def delete(args):
    client = key_client(args)
    client.begin_delete_key(args.name, _polling_interval=0.2).wait()
    if args.purge:
        client.purge_deleted_key(args.name)
    return {"name": args.name, "deleted": True, "purged": bool(args.purge)}


def set_enabled(args, enabled):
    props = key_client(args).update_key_properties(args.name, args.version, enabled=enabled).properties
    return {"name": props.name, "version": props.version, "enabled": props.enabled}


def private_key(text):
    try:
        d = bytes.fromhex(text[2:] if text.lower().startswith("0x") else text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex: {text!r}")
    if len(d) != 32 or not 0 < int.from_bytes(d, "big") < SECP256K1_N:
        raise argparse.ArgumentTypeError("a secp256k1 private key is 32 bytes, 0 < d < n")
    return d


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and argv[0] in ("delete", "disable", "enable") else None
    p = argparse.ArgumentParser(prog="setup_keys.py" + (f" {command}" if command else ""),
                                description="P-256K keys in azure_server.py, through azure-keyvault-keys")
    p.add_argument("--vault", required=True)
    p.add_argument("--ca", required=True, help="azure_server's ca.pem")
    p.add_argument("--tenant", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--authority", default=None, help="default: the vault URL")
    if command:
        p.add_argument("--name", required=True)
        if command == "delete":
            p.add_argument("--purge", action="store_true")
        else:
            p.add_argument("--version", default=None)
        args = p.parse_args(argv[1:])
        run = (lambda: delete(args)) if command == "delete" else (lambda: set_enabled(args, command == "enable"))
    else:
        p.add_argument("--count", type=int, default=1)
        p.add_argument("--prefix", default="gateway-test")
        p.add_argument("--hsm", action="store_true", help="kty EC-HSM instead of EC")
        p.add_argument("--private-key", type=private_key, action="append", default=[], metavar="HEX")
        args = p.parse_args(argv)
        if args.count < 0:
            p.error("--count must be >= 0")
        run = lambda: setup(args)  # noqa: E731

    from azure.core.exceptions import AzureError

    return servertools.print_json_result("setup_keys", run, AzureError, lambda e: f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    sys.exit(main())
