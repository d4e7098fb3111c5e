"""JSON-RPC 2.0 envelope handling, shared by HTTP and WebSocket.

Mirrors geth's server: batches are answered in order; an empty batch is a single
-32600 "empty batch" error; more than 1000 items get a one-element array with
-32600 "batch too large"; requests without an "id" member are notifications and get
no answer, while "id": null is a normal call (viem's keep-alive relies on that);
ids are echoed back as the same JSON value.
"""

import json
import logging
import traceback

from . import errors
from .methods import METHODS

MAX_BATCH = 1000
log = logging.getLogger("devnode")


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


def _error(id_, code, message, data=None):
    err = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def _valid_id(id_):
    return id_ is None or (isinstance(id_, (int, float, str)) and not isinstance(id_, bool))


def handle_one(ctx, msg):
    if not isinstance(msg, dict):
        return _error(None, errors.INVALID_REQUEST, "invalid request")
    id_ = msg.get("id")
    if not _valid_id(id_):
        return _error(None, errors.INVALID_REQUEST, "invalid request")
    method = msg.get("method")
    if msg.get("jsonrpc") != "2.0" or not isinstance(method, str) or not method:
        return _error(id_, errors.INVALID_REQUEST, "invalid request")
    is_notification = "id" not in msg
    fn = METHODS.get(method)
    if fn is None:
        resp = _error(id_, errors.METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
    else:
        try:
            resp = {"jsonrpc": "2.0", "id": id_, "result": fn(ctx, msg.get("params"))}
        except errors.RpcError as exc:
            resp = {"jsonrpc": "2.0", "id": id_, "error": exc.to_json()}
        except Exception as exc:  # a bug in the devnode: report it, keep serving
            log.error("internal error in %s: %s", method, traceback.format_exc())
            resp = _error(id_, errors.INTERNAL_ERROR, f"internal error: {exc}")
    return None if is_notification else resp


def handle(ctx, payload):
    """payload: str or bytes of one WS message / HTTP body. Returns the JSON text to send, or None."""
    try:
        msg = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return _dumps(_error(None, errors.PARSE_ERROR, "parse error"))
    if isinstance(msg, list):
        if not msg:
            return _dumps(_error(None, errors.INVALID_REQUEST, "empty batch"))
        if len(msg) > MAX_BATCH:
            return _dumps([_error(None, errors.INVALID_REQUEST, "batch too large")])
        answers = [a for a in (handle_one(ctx, m) for m in msg) if a is not None]
        return _dumps(answers) if answers else None
    answer = handle_one(ctx, msg)
    return _dumps(answer) if answer is not None else None
