"""ethsign_plugin: a Python double of the ethsign Vault plugin's backend (kaleido-io/vault-plugin-secrets-ethsign,
backend/*.go at efdc481), together with the parts of the Vault SDK framework (sdk v0.1.13, as pinned in the plugin's
go.mod) that decide how its requests are routed, validated and answered. No HTTP here: ethsign_proxy.py puts it behind
OpenBao's HTTP conventions and OpenBao's real ACLs.

Each function names the Go function whose behaviour it follows. Go error values are GoError(message); a Go panic is
PluginPanic(message) (the real plugin process would crash: see README.md, "Known differences").
"""

import hashlib
import hmac
import os
import re
import threading
import time

import rlp
from eth_hash.auto import keccak
from eth_keys.backends.native.jacobian import fast_multiply
from eth_keys.constants import SECPK1_G as G, SECPK1_N as N


class GoError(Exception):
    """A Go `error` returned by a callback: Vault answers 500 {"errors":["1 error occurred:\\n\\t* MSG\\n\\n"]}."""


class PluginPanic(Exception):
    """A Go panic inside the plugin (math.MustParseBig256 on a bad number, a nil *big.Int nonce)."""


class UserError(Exception):
    """errutil.UserError: returned by framework.HandleExistenceCheck when field validation fails; Vault answers 400."""


class UnsupportedPath(Exception):
    """logical.ErrUnsupportedPath (HTTP 404 "unsupported path")."""


class UnsupportedOperation(Exception):
    """logical.ErrUnsupportedOperation (HTTP 405 "unsupported operation")."""


# ---------------------------------------------------------------------------------------------------------------
# Values as Vault hands them to the plugin. Vault decodes JSON bodies with UseNumber (jsonutil), so a JSON number
# reaches the plugin as json.Number: its literal text. Query parameters with several values are []string.

class GoNumber(str):
    """A JSON number as json.Number: the literal text of the number."""


class GoStringSlice(list):
    """A []string (a repeated query parameter)."""


def _scalar_text(value, nil, true, false):
    """The text of nil (`nil`), a bool (`true` / `false`) or a string or json.Number (its text); None otherwise."""
    if value is None:
        return nil
    if value is True or value is False:
        return true if value else false
    if isinstance(value, str):
        return str(value)
    return None


def go_v(value):
    """fmt's %v of a decoded JSON value."""
    text = _scalar_text(value, "<nil>", "true", "false")
    if text is not None:
        return text
    if isinstance(value, list):
        return "[" + " ".join(go_v(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_v(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def go_type(value):
    if isinstance(value, GoStringSlice):
        return "[]string"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


def weak_decode_string(value):
    """mapstructure v1.4.1 WeakDecode(raw, &string) (framework.FieldData.getPrimitive, TypeString).

    string and json.Number keep their text, bool -> "1"/"0", nil leaves "" (mapstructure sets nothing for nil input);
    a slice (of non-bytes) or a map cannot be converted."""
    text = _scalar_text(value, "", "1", "0")
    if text is not None:
        return text
    raise ValueError(f"'' expected type 'string', got unconvertible type '{go_type(value)}', value: '{go_v(value)}'")


class Field:
    def __init__(self, default=None):
        self.default = default


class FieldData:
    """framework.FieldData for TypeString fields only (every ethsign field is a TypeString)."""

    def __init__(self, raw, schema):
        self.raw = raw
        self.schema = schema

    def validate(self):
        """FieldData.Validate: every raw key that is in the schema must convert. Go ranges over a map (random order);
        the double checks fields in sorted order."""
        for field in sorted(self.raw):
            if field not in self.schema:
                continue
            try:
                weak_decode_string(self.raw[field])
            except ValueError as e:
                raise ValueError(f"error converting input {go_v(self.raw[field])} for field \"{field}\": {e}")

    def get(self, k):
        """FieldData.Get: the decoded value when present (even ""), else the schema default, else ""."""
        if k in self.raw:
            return weak_decode_string(self.raw[k])
        default = self.schema[k].default
        return "" if default is None else default


# ---------------------------------------------------------------------------------------------------------------
# go-ethereum v1.10.17 helpers, on UTF-8 bytes as Go strings are.

HEX_DIGITS = b"0123456789abcdefABCDEF"


def _is_hex_byte(c):
    return c in HEX_DIGITS


def hexutil_decode(s):
    """common/hexutil.Decode: "0x"-prefixed hex -> bytes, with hexutil's error strings."""
    b = s.encode("utf-8", "surrogatepass")
    if len(b) == 0:
        raise GoError("empty hex string")
    if not (len(b) >= 2 and b[0:1] == b"0" and b[1:2] in (b"x", b"X")):
        raise GoError("hex string without 0x prefix")
    body = b[2:]
    # encoding/hex.Decode: an invalid byte anywhere (pairs first, then the odd last one) is ErrSyntax, else an odd
    # length is ErrOddLength.
    if any(not _is_hex_byte(c) for c in body):
        raise GoError("invalid hex string")
    if len(body) % 2:
        raise GoError("hex string of odd length")
    return bytes.fromhex(body.decode())


def common_from_hex(s):
    """common.FromHex: strip 0x/0X, left-pad an odd length with "0", then Hex2Bytes, which ignores the decode error and
    keeps the bytes decoded before the first invalid pair (encoding/hex.DecodeString)."""
    b = s.encode("utf-8", "surrogatepass")
    if len(b) >= 2 and b[0:1] == b"0" and b[1:2] in (b"x", b"X"):
        b = b[2:]
    if len(b) % 2 == 1:
        b = b"0" + b
    out = bytearray()
    for i in range(0, len(b), 2):
        pair = b[i:i + 2]
        if not (_is_hex_byte(pair[0]) and _is_hex_byte(pair[1])):
            break
        out.append(int(pair.decode(), 16))
    return bytes(out)


def hex_to_address(s):
    """common.HexToAddress: BytesToAddress(FromHex(s)): the last 20 bytes, left-padded with zeros."""
    b = common_from_hex(s)
    if len(b) > 20:
        b = b[-20:]
    return b"\x00" * (20 - len(b)) + b


_DEC = re.compile(r"[+-]?[0-9]+")
_HEX = re.compile(r"[+-]?[0-9a-fA-F]+")


def parse_big256(s):
    """common/math.ParseBig256: "" -> 0, 0x/0X -> big.Int.SetString(rest, 16), else SetString(s, 10); more than
    256 bits fails. Returns None on failure."""
    if s == "":
        return 0
    if len(s) >= 2 and s[:2] in ("0x", "0X"):
        digits, base, pattern = s[2:], 16, _HEX
    else:
        digits, base, pattern = s, 10, _DEC
    if not pattern.fullmatch(digits):
        return None
    v = int(digits, base)
    if abs(v).bit_length() > 256:
        return None
    return v


def valid_number(s):
    """backend/accounts.go ValidNumber: "" -> 0; no decimal digit anywhere -> nil (None); otherwise
    math.MustParseBig256 (which panics on a bad number), then Abs."""
    if s == "":
        return 0
    if not re.search(r"[0-9]", s):
        return None
    v = parse_big256(s)
    if v is None:
        raise PluginPanic("invalid 256 bit integer: " + s)
    return abs(v)


def big_uint64(v):
    """big.Int.Uint64 of a non-negative value: its low 64 bits."""
    return v & ((1 << 64) - 1)


# secp256k1, as go-ethereum's crypto package (libsecp256k1) does it.

def _rfc6979_nonces(key32, msg32):
    """libsecp256k1 nonce_function_rfc6979: HMAC-SHA256 DRBG seeded with key || (msg mod n), no extra data."""
    msgmod = (int.from_bytes(msg32, "big") % N).to_bytes(32, "big")
    v = b"\x01" * 32
    k = b"\x00" * 32
    seed = key32 + msgmod
    k = hmac.new(k, v + b"\x00" + seed, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    k = hmac.new(k, v + b"\x01" + seed, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    while True:
        v = hmac.new(k, v, hashlib.sha256).digest()
        yield v
        k = hmac.new(k, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(k, v, hashlib.sha256).digest()


def secp256k1_sign(digest32, key32):
    """crypto.Sign: a recoverable signature (r, s, recid) with low S, deterministic (RFC 6979)."""
    d = int.from_bytes(key32, "big")
    z = int.from_bytes(digest32, "big") % N
    for nonce in _rfc6979_nonces(key32, digest32):
        k = int.from_bytes(nonce, "big")
        if not 0 < k < N:
            continue
        x, y = fast_multiply(G, k)
        r = x % N
        if r == 0:
            continue
        s = pow(k, -1, N) * (z + r * d) % N
        if s == 0:
            continue
        recid = (y & 1) | (2 if x >= N else 0)
        if s > N // 2:
            s = N - s
            recid ^= 1
        return r, s, recid


def public_key(key32):
    """crypto.FromECDSAPub without the 0x04 prefix: X || Y."""
    x, y = fast_multiply(G, int.from_bytes(key32, "big"))
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def hex_to_ecdsa(hexkey):
    """crypto.HexToECDSA -> toECDSA(strict): 32 bytes, 0 < D < N. Returns the 32 bytes or raises ValueError."""
    try:
        d = bytes.fromhex(hexkey)
    except ValueError:
        raise ValueError("invalid hex character")
    if len(d) != 32:
        raise ValueError("invalid length, need 256 bits")
    v = int.from_bytes(d, "big")
    if v >= N:
        raise ValueError("invalid private key, >=N")
    if v <= 0:
        raise ValueError("invalid private key, zero or negative")
    return d


def generate_key():
    """crypto.GenerateKey."""
    while True:
        d = os.urandom(32)
        if 0 < int.from_bytes(d, "big") < N:
            return d


def address_of(key32):
    """createAccount: hexutil.Encode(keccak256(pub[1:])[12:]), lower-case 0x-hex."""
    return "0x" + keccak(public_key(key32))[12:].hex()


# ---------------------------------------------------------------------------------------------------------------
# Accounts (backend/accounts.go). Storage is one dict per (namespace, mount): path -> Account JSON.

class Storage:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries = {}

    def get(self, path):
        with self.lock:
            e = self.entries.get(path)
            return dict(e) if e is not None else None

    def put(self, path, value):
        with self.lock:
            self.entries[path] = dict(value)

    def delete(self, path):
        with self.lock:
            self.entries.pop(path, None)

    def list(self, prefix):
        """logical.Storage.List: the keys one level below prefix, sorted (folders keep a trailing "/")."""
        with self.lock:
            keys = set()
            for p in self.entries:
                if p.startswith(prefix):
                    rest = p[len(prefix):]
                    keys.add(rest.split("/", 1)[0] + "/" if "/" in rest else rest)
            return sorted(keys)


_ADDRESS = re.compile(r"(0x)?[0-9a-fA-F]{40}")
_KEY_TAIL = re.compile(r"[0-9a-fA-F]{64}\Z")


class Backend:
    """The plugin's callbacks, one Backend per (namespace, mount)."""

    def __init__(self, sign_latency_s=0.0):
        self.storage = Storage()
        self.sign_latency_s = sign_latency_s

    # accounts.go listAccounts: logical.ListResponse(Storage.List("accounts/")): {} when there are none.
    def list_accounts(self, fd):
        keys = self.storage.list("accounts/")
        return {"keys": keys} if keys else {}

    # accounts.go createAccount
    def create_account(self, fd):
        key_input = fd.get("privateKey")
        if key_input != "":
            m = _KEY_TAIL.search(key_input)
            if m is None:
                raise GoError("privateKey must be a 32-byte hexidecimal string")
            key_hex = m.group(0)
            try:
                key = hex_to_ecdsa(key_hex)
            except ValueError:
                raise GoError("Error reconstructing private key from input hex")
            key_string = key_hex  # stored as matched, case kept
        else:
            key = generate_key()
            key_string = key.hex()
        address = address_of(key)
        self.storage.put(f"accounts/{address}", {
            "address": address, "private_key": key_string, "public_key": public_key(key).hex()})
        return {"address": address}

    # accounts.go retrieveAccount
    def retrieve_account(self, address):
        if not _ADDRESS.fullmatch(address):
            raise GoError("Failed to retrieve the account, malformatted account address")
        if address[:2] != "0x":
            address = "0x" + address
        return self.storage.get(f"accounts/{address}")  # case-sensitive: stored addresses are lower-case

    # accounts.go readAccount
    def read_account(self, fd):
        account = self.retrieve_account(fd.get("name"))
        if account is None:
            raise GoError("Account does not exist")
        return {"address": account["address"]}

    # accounts.go exportAccount
    def export_account(self, fd):
        account = self.retrieve_account(fd.get("name"))
        if account is None:
            raise GoError("Account does not exist")
        return {"address": account["address"], "privateKey": account["private_key"]}

    # accounts.go deleteAccount: nil response (HTTP 204), also when the account does not exist.
    def delete_account(self, fd):
        account = self.retrieve_account(fd.get("name"))
        if account is None:
            return None
        self.storage.delete(f"accounts/{account['address']}")
        return None

    # accounts.go signTx
    def sign_tx(self, fd):
        if self.sign_latency_s:
            time.sleep(self.sign_latency_s)
        sender = fd.get("name")
        data_input = fd.get("data")
        if data_input == "":  # "some client such as go-ethereum uses "input" instead of "data""
            data_input = fd.get("input")
        raw = data_input.encode("utf-8", "surrogatepass")
        if len(raw) > 2 and raw[0:2] != b"0x":
            data_input = "0x" + data_input
        payload = hexutil_decode(data_input)  # "" -> "empty hex string"

        try:
            account = self.retrieve_account(sender)
        except GoError:
            raise GoError(f"Error retrieving signing account {sender}")
        if account is None:
            raise GoError(f"Signing account {sender} does not exist")
        amount = valid_number(fd.get("value"))
        if amount is None:
            raise GoError("Invalid amount for the 'value' field")
        raw_to = fd.get("to")
        chain_id = valid_number(fd.get("chainId"))
        if chain_id is None:
            raise GoError("Invalid 'chainId' value")
        gas_in = valid_number(fd.get("gas"))
        if gas_in is None:
            raise GoError("Invalid gas limit")
        gas = big_uint64(gas_in)
        gas_price = valid_number(fd.get("gasPrice"))
        if gas_price is None:  # NewTransaction copies a nil gasPrice as 0
            gas_price = 0
        key = hex_to_ecdsa(account["private_key"])
        nonce_in = valid_number(fd.get("nonce"))
        if nonce_in is None:  # nonceIn.Uint64() on a nil *big.Int
            raise PluginPanic("runtime error: invalid memory address or nil pointer dereference")
        nonce = big_uint64(nonce_in)

        to = b"" if raw_to == "" else hex_to_address(raw_to)  # "" -> NewContractCreation
        fields = [nonce, gas_price, gas, to, amount, payload]
        if chain_id == 0:  # types.HomesteadSigner
            digest = keccak(rlp.encode(fields))
        else:  # types.NewEIP155Signer(chainId)
            digest = keccak(rlp.encode(fields + [chain_id, 0, 0]))
        r, s, recid = secp256k1_sign(digest, key)
        v = recid + 27 if chain_id == 0 else recid + 35 + 2 * chain_id
        signed = rlp.encode(fields + [v, r, s])  # signedTx.EncodeRLP: a legacy transaction
        return {
            "signed_transaction": "0x" + signed.hex(),        # hexutil.Encode
            "transaction_hash": "0x" + keccak(signed).hex(),  # signedTx.Hash().Hex()
        }


# ---------------------------------------------------------------------------------------------------------------
# Paths (backend/path_*.go) and the framework's routing (sdk/framework/backend.go).

NAME = r"(?P<name>\w(([\w\-.]+)?\w)?)"  # framework.GenericNameRegex("name")

SIGN_FIELDS = {
    "name": Field(), "to": Field(""), "data": Field(), "input": Field(), "value": Field(), "nonce": Field(),
    "gas": Field("90000"), "gasPrice": Field("0"), "chainId": Field("0"),
}


class PathDef:
    def __init__(self, pattern, fields, existence_check, callbacks):
        self.pattern = pattern
        self.regex = re.compile("^" + pattern + r"\Z", re.ASCII)
        self.fields = fields
        self.existence_check = existence_check
        self.callbacks = callbacks


# In the order of accounts.go paths(): the first matching pattern wins.
PATHS = [
    PathDef("accounts/?", {"privateKey": Field("")}, False,                        # path_create_list.go
            {"list": "list_accounts", "update": "create_account"}),
    PathDef("accounts/" + NAME, {"name": Field()}, True,                           # path_read_delete.go
            {"read": "read_account", "delete": "delete_account"}),
    PathDef("accounts/" + NAME + "/sign", SIGN_FIELDS, True,                       # path_sign.go
            {"create": "sign_tx"}),
    PathDef("export/accounts/" + NAME, {"name": Field()}, True,                    # path_export.go
            {"read": "export_account"}),
]


def route(path):
    """framework.Backend.route: (PathDef, captures) or (None, None)."""
    for p in PATHS:
        m = p.regex.match(path)
        if m:
            return p, {k: v for k, v in m.groupdict().items() if v is not None}
    return None, None


def _raw(data, captures):
    raw = dict(data or {})
    raw.update(captures)  # "with the URL taking priority for the fields over the PUT data"
    return raw


def existence_check(backend, path, data):
    """framework.Backend.HandleExistenceCheck + the plugin's pathExistenceCheck (Storage.Get(req.Path) != nil).
    Returns (check_found, exists); raises UnsupportedPath or UserError."""
    p, captures = route(path)
    if p is None:
        raise UnsupportedPath()
    if not p.existence_check:
        return False, False
    try:
        FieldData(_raw(data, captures), p.fields).validate()
    except ValueError as e:
        raise UserError(str(e))
    return True, backend.storage.get(path) is not None


def handle_request(backend, operation, path, data):
    """framework.Backend.HandleRequest (sdk v0.1.13): route, pick the callback, FieldData.Validate (its error is
    returned as a plain Go error), call. Returns the response data dict or None."""
    p, captures = route(path)
    if p is None:
        raise UnsupportedPath()
    name = p.callbacks.get(operation)
    if name is None:
        raise UnsupportedOperation()
    fd = FieldData(_raw(data, captures), p.fields)
    try:
        fd.validate()
    except ValueError as e:
        raise GoError(str(e))
    return getattr(backend, name)(fd)
