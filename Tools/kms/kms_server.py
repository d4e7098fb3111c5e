#!/usr/bin/env python3
"""kms_server: a local AWS KMS double (moto 5.2.5's KMS + IAM + STS, in this process) for
SignerGateway's KMS backend tests. Run with Tools/kms/.venv/bin/python (see install.sh).

  kms_server.py [--host 127.0.0.1] [--port 0] [--enforce-auth N] [--sign-latency-ms MS] [--log-requests]

Prints exactly one line on stdout (flushed) once the socket accepts connections:
  kms listening on http://127.0.0.1:PORT

  --port P             0 (default) picks a free port
  --enforce-auth N     SigV4 signatures and IAM policies are checked from request N+1 on; the
                       first N requests (any service) pass unchecked (moto's
                       INITIAL_NO_AUTH_ACTION_COUNT). Default: never checked.
                       setup_keys.py needs `setup_keys.py --free-requests` of them.
  --sign-latency-ms MS sleep MS ms inside every Sign call (the server is threaded: concurrent
                       Signs overlap)
  --log-requests       werkzeug's access log on stderr (default: warnings only)

SIGTERM / SIGINT exit at once with code 0, even with requests in flight. No child processes.

Patches to stock moto 5.2.5 (see README.md, "Why the patches"):
  Sign/Verify  MessageType DIGEST signs/verifies the given digest as prehashed (moto hashed it
               again); a digest whose length is not the algorithm's hash length, an unknown
               MessageType, or a RAW message over 4096 bytes -> ValidationException.
  GetPublicKey answers KeySpec (moto: only CustomerMasterKeySpec) and KeyId as the key ARN,
               like AWS; null fields are left out.
  HTTP         JSON answers to TrentService.* (200s and JSON errors) say Content-Type
               application/x-amz-json-1.1 (moto: text/html, application/json); an unsigned TrentService request -> 400 MissingAuthenticationTokenException
               (moto: 500), an unknown TrentService operation -> 400 UnknownOperationException (moto: 500).
  Sign/Verify/GetPublicKey on a disabled key -> DisabledException (400), on a key pending deletion
               -> KMSInvalidStateException (400); moto used disabled keys as if enabled.
"""

import argparse
import os
import sys
import time

# servertools (Tools/shared, stdlib only): the signal, TLS and ready-line helpers every tool's server shares.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shared"))
import servertools  # noqa: E402


def parse(argv=None):
    p = argparse.ArgumentParser(description="local AWS KMS double (moto) for tests")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--enforce-auth", type=int, default=None, metavar="N",
                   help="check SigV4 + IAM after the first N requests")
    p.add_argument("--sign-latency-ms", type=float, default=0.0, metavar="MS")
    p.add_argument("--log-requests", action="store_true")
    args = p.parse_args(argv)
    if args.enforce_auth is not None and args.enforce_auth < 0:
        p.error("--enforce-auth must be >= 0")
    if args.sign_latency_ms < 0:
        p.error("--sign-latency-ms must be >= 0")
    return args


# ---------------------------------------------------------------------------------------------
# moto patches (installed by patch_moto(); imports of moto happen only after the environment is set)

DIGEST_LENGTHS = {"SHA_256": 32, "SHA_384": 48, "SHA_512": 64}
MESSAGE_TYPES = ["RAW", "DIGEST", "EXTERNAL_MU"]
MAX_RAW_MESSAGE = 4096


def patch_moto(sign_latency_s):
    import base64
    import json

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    from moto.core.exceptions import JsonRESTError
    from moto.kms import responses as kms_responses
    from moto.kms.exceptions import ValidationException
    from moto.kms.responses import KmsResponse

    class DisabledException(JsonRESTError):
        code = 400

        def __init__(self, message):
            super().__init__("DisabledException", message)

    class KMSInvalidStateException(JsonRESTError):
        code = 400

        def __init__(self, message):
            super().__init__("KMSInvalidStateException", message)

    kms_responses.DisabledException = DisabledException
    kms_responses.KMSInvalidStateException = KMSInvalidStateException

    def usable_key(self, key_id):
        """The key behind any id form (id, ARN, alias, alias ARN), refusing disabled ones like AWS."""
        if not key_id:
            raise ValidationException("1 validation error detected: Value null at 'keyId' failed to "
                                      "satisfy constraint: Member must not be null")
        self._validate_key_id(key_id)
        key = self.kms_backend.describe_key(key_id)
        if key.key_state == "Disabled" or (not key.enabled and key.key_state != "PendingDeletion"):
            raise DisabledException(f"{key.arn} is disabled.")
        if key.key_state == "PendingDeletion":
            raise KMSInvalidStateException(f"{key.arn} is pending deletion.")
        return key

    def message_and_type(self, signing_algorithm):
        message = self._get_param("Message")
        message_type = self._get_param("MessageType") or "RAW"
        if isinstance(message, str):
            message = message.encode("utf-8")
        if message is None or message == b"":
            raise ValidationException(
                "1 validation error detected: Value at 'Message' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1")
        if message_type not in MESSAGE_TYPES:
            raise ValidationException(
                f"1 validation error detected: Value '{message_type}' at 'messageType' failed to satisfy "
                f"constraint: Member must satisfy enum value set: [{', '.join(MESSAGE_TYPES)}]")
        if message_type == "EXTERNAL_MU":
            raise ValidationException("MessageType EXTERNAL_MU is only valid for ML-DSA keys.")
        if message_type == "RAW" and len(message) > MAX_RAW_MESSAGE:
            raise ValidationException(
                "1 validation error detected: Value at 'message' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_RAW_MESSAGE}")
        if message_type == "DIGEST":
            want = next((n for suffix, n in DIGEST_LENGTHS.items()
                         if (signing_algorithm or "").endswith(suffix)), None)
            if want is not None and len(message) != want:
                raise ValidationException(f"Digest is invalid length for algorithm {signing_algorithm}.")
        return message, message_type

    def check_algorithm(key, signing_algorithm):
        if not signing_algorithm:
            raise ValidationException("1 validation error detected: Value null at 'signingAlgorithm' "
                                      "failed to satisfy constraint: Member must not be null")
        if signing_algorithm not in (key.signing_algorithms or []):
            raise ValidationException(
                f"1 validation error detected: Value '{signing_algorithm}' at 'SigningAlgorithm' failed "
                f"to satisfy constraint: Member must satisfy enum value set: {key.signing_algorithms}")
        if key.key_usage != "SIGN_VERIFY":
            raise ValidationException(
                f"1 validation error detected: Value '{key.id}' at 'KeyId' failed to satisfy "
                "constraint: Member must point to a key with usage: 'SIGN_VERIFY'")

    def prehashed_scheme(key, signing_algorithm):
        """(cryptography private key, sign/verify extra args) for a DIGEST message."""
        crypto_key = key.private_key.private_key
        name = next(s for s in DIGEST_LENGTHS if signing_algorithm.endswith(s))
        hash_alg = {"SHA_256": hashes.SHA256, "SHA_384": hashes.SHA384, "SHA_512": hashes.SHA512}[name]()
        if isinstance(crypto_key, ec.EllipticCurvePrivateKey):
            return crypto_key, (ec.ECDSA(utils.Prehashed(hash_alg)),)
        if isinstance(crypto_key, rsa.RSAPrivateKey):
            if signing_algorithm.startswith("RSASSA_PSS_"):
                pad = padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=padding.PSS.MAX_LENGTH)
            else:
                pad = padding.PKCS1v15()
            return crypto_key, (pad, utils.Prehashed(hash_alg))
        raise ValidationException(f"MessageType DIGEST is not supported for {key.key_spec} here.")

    def sign(self):
        if sign_latency_s:
            time.sleep(sign_latency_s)
        key_id = self._get_param("KeyId")
        signing_algorithm = self._get_param("SigningAlgorithm")
        key = usable_key(self, key_id)
        message, message_type = message_and_type(self, signing_algorithm)
        check_algorithm(key, signing_algorithm)
        if message_type == "DIGEST":
            crypto_key, scheme = prehashed_scheme(key, signing_algorithm)
            signature = crypto_key.sign(message, *scheme)
        else:
            signature = key.private_key.sign(message, signing_algorithm)
        return json.dumps({"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(),
                           "SigningAlgorithm": signing_algorithm})

    def verify(self):
        key_id = self._get_param("KeyId")
        signing_algorithm = self._get_param("SigningAlgorithm")
        signature = self._get_param("Signature")
        key = usable_key(self, key_id)
        message, message_type = message_and_type(self, signing_algorithm)
        if isinstance(signature, str):
            signature = base64.b64decode(signature.encode())
        if not signature:
            raise ValidationException(
                "1 validation error detected: Value at 'Signature' failed to satisfy constraint: "
                "Member must have length greater than or equal to 1")
        check_algorithm(key, signing_algorithm)
        if message_type == "DIGEST":
            crypto_key, scheme = prehashed_scheme(key, signing_algorithm)
            try:
                crypto_key.public_key().verify(signature, message, *scheme)
                valid = True
            except InvalidSignature:
                valid = False
        else:
            valid = key.private_key.verify(message, signature, signing_algorithm)
        if not valid:
            # AWS answers an invalid signature with KMSInvalidSignatureException, not SignatureValid=false.
            raise JsonRESTError("KMSInvalidSignatureException", "")
        return json.dumps({"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": signing_algorithm})

    def get_public_key(self):
        key = usable_key(self, self._get_param("KeyId"))
        _, public_key = self.kms_backend.get_public_key(key.id)
        answer = {
            "CustomerMasterKeySpec": key.key_spec,
            "EncryptionAlgorithms": key.encryption_algorithms,
            "KeyId": key.arn,
            "KeySpec": key.key_spec,
            "KeyUsage": key.key_usage,
            "PublicKey": base64.b64encode(public_key).decode(),
            "SigningAlgorithms": key.signing_algorithms,
        }
        return json.dumps({k: v for k, v in answer.items() if v is not None})

    KmsResponse.sign = sign
    KmsResponse.verify = verify
    KmsResponse.get_public_key = get_public_key


def kms_wsgi(app):
    """Fixes moto's HTTP framing for KMS (X-Amz-Target TrentService.*) requests: a 200 answer or a JSON
    error says Content-Type application/x-amz-json-1.1 (moto: text/html, application/json), and a request without an
    Authorization header gets AWS's 400 MissingAuthenticationTokenException (moto would route it to
    its S3 backend and answer 500), an unknown operation 400 UnknownOperationException (moto: 500)."""
    import json
    import uuid

    from moto.core.utils import camelcase_to_underscores, method_names_from_class
    from moto.kms.responses import KmsResponse

    operations = set(method_names_from_class(KmsResponse))

    def error(start_response, error_type, message):
        body = json.dumps({"__type": error_type, "message": message}).encode()
        start_response("400 BAD REQUEST", [
            ("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body))),
            ("X-Amzn-ErrorType", error_type), ("x-amzn-RequestId", str(uuid.uuid4()))])
        return [body]

    def wrapped(environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("TrentService."):
            return app(environ, start_response)
        operation = environ["HTTP_X_AMZ_TARGET"].split(".", 1)[1]
        if not environ.get("HTTP_AUTHORIZATION"):
            return error(start_response, "MissingAuthenticationTokenException", "Missing Authentication Token")
        if camelcase_to_underscores(operation) not in operations:
            return error(start_response, "UnknownOperationException", "")

        def start(status, headers, exc_info=None):
            # moto's XML answers to a failed signature check (403 SignatureDoesNotMatch / InvalidClientTokenId)
            # keep their Content-Type: they are not JSON.
            def json_answer(value):
                return status.startswith("200") or value.split(";")[0].strip().lower() == "application/json"

            headers = [(k, "application/x-amz-json-1.1" if k.lower() == "content-type" and json_answer(v) else v)
                       for k, v in headers]
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    t0 = time.monotonic()
    servertools.unblock_stop_signals()
    args = parse(argv)
    servertools.exit_on_stop_signals()

    # moto reads these when moto.settings is first imported.
    if args.enforce_auth is not None:
        os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(args.enforce_auth)
    else:
        os.environ.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for k in ("TEST_SERVER_MODE", "MOTO_CALL_RESET_API"):
        os.environ.pop(k, None)

    import logging
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="kms: %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.log_requests else logging.WARNING)

    from werkzeug.serving import make_server

    from moto import settings
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    # Belt and braces: the env var was set before the import above, but also set the parsed value.
    settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf") if args.enforce_auth is None else float(args.enforce_auth)
    patch_moto(args.sign_latency_ms / 1000.0)

    app = DomainDispatcherApplication(create_backend_app)
    for service in ("kms", "iam", "sts"):  # build them now, not on the first request
        app.app_instances[service] = create_backend_app(service)

    # threaded=True: werkzeug's ThreadedWSGIServer, one daemon thread per connection.
    server = make_server(args.host, args.port, kms_wsgi(app), threaded=True, request_handler=MotoRequestHandler)
    port = server.server_address[1]
    servertools.announce_ready(f"kms listening on http://{args.host}:{port}",
                               f"kms: ready in {time.monotonic() - t0:.2f} s")
    server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main()
