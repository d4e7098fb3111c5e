#!/usr/bin/env python3
"""setup_keys: creates an IAM user with an access key and N secp256k1 signing keys in a running
kms_server.py, and prints what a test needs as ONE JSON object on stdout.
Run with Tools/kms/.venv/bin/python.

  setup_keys.py --free-requests
      prints the number of unauthenticated requests the setup makes (start the server with
      `kms_server.py --enforce-auth <that number>` so that everything after the setup is checked)

  setup_keys.py --endpoint http://127.0.0.1:PORT --count N [--region us-east-1]
                [--alias-prefix gateway-test] [--user NAME]
      free requests (any credentials): iam CreateUser, PutUserPolicy (inline, kms:* on *),
      CreateAccessKey. Then, signed with that access key (so it works with auth enforced or not):
      per key kms CreateKey(KeySpec=ECC_SECG_P256K1, KeyUsage=SIGN_VERIFY), CreateAlias
      alias/<prefix>-<i> (i = 0..N-1), GetPublicKey. Prints
        {"accessKeyId": ..., "secretAccessKey": ..., "region": ..., "user": ...,
         "keys": [{"keyId": UUID, "arn": ..., "alias": "alias/<prefix>-<i>",
                   "address": "0x<40 hex>", "publicKey": "04<X 64 hex><Y 64 hex>"}, ...]}
      address = last 20 bytes of keccak256(X || Y), lower-case hex. Run it once per server:
      the aliases would already exist the second time.

  setup_keys.py disable --endpoint URL --key-id ID --access-key-id AK --secret-access-key SK [--region R]
  setup_keys.py enable  --endpoint URL --key-id ID --access-key-id AK --secret-access-key SK [--region R]
      kms DisableKey / EnableKey (ID: key id or key ARN, as AWS requires), signed with AK/SK;
      prints {"keyId": ..., "keyState": "Disabled"|"Enabled"}.

Exit code 0 on success; on an AWS error, 1 with the error on stderr.
"""

import argparse
import json
import os
import sys
import uuid

# servertools (Tools/shared, stdlib only): the JSON-line-or-error ending every tool's setup script shares.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shared"))
import servertools  # noqa: E402

FREE_REQUESTS = 3  # CreateUser, PutUserPolicy, CreateAccessKey

KMS_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
}


def client(service, endpoint, region, access_key_id, secret_access_key):
    import boto3
    from botocore.config import Config

    # No retries: every attempt counts against the server's free requests.
    return boto3.client(service, endpoint_url=endpoint, region_name=region,
                        aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


def eth_address(uncompressed_point):
    from Crypto.Hash import keccak

    assert len(uncompressed_point) == 65 and uncompressed_point[0] == 4
    return "0x" + keccak.new(digest_bits=256, data=uncompressed_point[1:]).digest()[-20:].hex()


def public_point(der):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_der_public_key(der)
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def setup(endpoint, count, region, alias_prefix, user):
    iam = client("iam", endpoint, region, "testing", "testing")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="kms-all", PolicyDocument=json.dumps(KMS_POLICY))
    ak = iam.create_access_key(UserName=user)["AccessKey"]
    kms = client("kms", endpoint, region, ak["AccessKeyId"], ak["SecretAccessKey"])
    keys = []
    for i in range(count):
        meta = kms.create_key(KeySpec="ECC_SECG_P256K1", KeyUsage="SIGN_VERIFY",
                              Description=f"{alias_prefix} key {i}")["KeyMetadata"]
        alias = f"alias/{alias_prefix}-{i}"
        kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        point = public_point(kms.get_public_key(KeyId=meta["KeyId"])["PublicKey"])
        keys.append({"keyId": meta["KeyId"], "arn": meta["Arn"], "alias": alias,
                     "address": eth_address(point), "publicKey": point.hex()})
    return {"accessKeyId": ak["AccessKeyId"], "secretAccessKey": ak["SecretAccessKey"],
            "region": region, "user": user, "keys": keys}


def set_enabled(args, enabled):
    kms = client("kms", args.endpoint, args.region, args.access_key_id, args.secret_access_key)
    if enabled:
        kms.enable_key(KeyId=args.key_id)
    else:
        kms.disable_key(KeyId=args.key_id)
    return {"keyId": args.key_id, "keyState": "Enabled" if enabled else "Disabled"}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("disable", "enable"):
        p = argparse.ArgumentParser(prog=f"setup_keys.py {argv[0]}")
        p.add_argument("--endpoint", required=True)
        p.add_argument("--key-id", required=True)
        p.add_argument("--access-key-id", required=True)
        p.add_argument("--secret-access-key", required=True)
        p.add_argument("--region", default="us-east-1")
        args = p.parse_args(argv[1:])
        run = lambda: set_enabled(args, argv[0] == "enable")  # noqa: E731
    else:
        p = argparse.ArgumentParser(prog="setup_keys.py", description="IAM user + secp256k1 keys in kms_server.py")
        p.add_argument("--free-requests", action="store_true", help="print the free-request count and exit")
        p.add_argument("--endpoint")
        p.add_argument("--count", type=int, default=1)
        p.add_argument("--region", default="us-east-1")
        p.add_argument("--alias-prefix", default="gateway-test")
        p.add_argument("--user", default=None, help="IAM user name (default: kms-test-<random>)")
        args = p.parse_args(argv)
        if args.free_requests:
            print(FREE_REQUESTS)
            return 0
        if not args.endpoint:
            p.error("--endpoint is required")
        if args.count < 0:
            p.error("--count must be >= 0")
        user = args.user or f"kms-test-{uuid.uuid4().hex[:8]}"
        run = lambda: setup(args.endpoint, args.count, args.region, args.alias_prefix, user)  # noqa: E731

    from botocore.exceptions import BotoCoreError, ClientError

    return servertools.print_json_result("setup_keys", run, (ClientError, BotoCoreError))


if __name__ == "__main__":
    sys.exit(main())
