"""eth_subscribe / eth_unsubscribe bookkeeping and notification ordering.

geth guarantees a client never sees a notification for a subscription id before the
eth_subscribe response that created it. A subscription is therefore created
inactive: notifications produced meanwhile (for example by an automined tx later in
the same batch) are buffered, and the server activates the connection's new
subscriptions right after it has queued the response, flushing the buffer behind it.
Subscriptions end with their connection.
"""

import json
import os

from . import errors
from .logfilter import LogFilter
from .render import header_only

KINDS = ("newHeads", "logs")


class Subscription:
    __slots__ = ("id", "kind", "filter", "conn", "active", "buffer")

    def __init__(self, sub_id, kind, log_filter, conn):
        self.id, self.kind, self.filter, self.conn = sub_id, kind, log_filter, conn
        self.active = False
        self.buffer = []


class Hub:
    def __init__(self, node):
        self._subs = {}  # id -> Subscription
        node.block_listeners.append(self.on_block)

    def subscribe(self, conn, params):
        if not params or not isinstance(params[0], str):
            raise errors.invalid_params("invalid argument 0: expected subscription name")
        kind = params[0]
        if kind not in KINDS:
            raise errors.RpcError(errors.METHOD_NOT_FOUND, f'no "{kind}" subscription in eth namespace')
        log_filter = None
        if kind == "logs":
            if len(params) > 2:
                raise errors.invalid_params("too many arguments, want at most 2")
            log_filter = LogFilter.parse(params[1] if len(params) > 1 else None)
        elif len(params) > 1:
            raise errors.invalid_params("too many arguments, want at most 1")
        sub_id = "0x" + os.urandom(16).hex()
        sub = Subscription(sub_id, kind, log_filter, conn)
        self._subs[sub_id] = sub
        conn.subs[sub_id] = sub
        return sub_id

    def all(self):
        return list(self._subs.values())

    def unsubscribe(self, conn, sub_id):
        sub = conn.subs.pop(sub_id, None) if isinstance(sub_id, str) else None
        if sub is None:
            raise errors.RpcError(errors.SERVER_ERROR, "subscription not found")
        self._subs.pop(sub_id, None)
        return True

    def drop_connection(self, conn):
        for sub_id in list(conn.subs):
            self._subs.pop(sub_id, None)
        conn.subs.clear()

    @staticmethod
    def activate(conn):
        """Called after the response that created subscriptions has been queued."""
        for sub in conn.subs.values():
            if not sub.active:
                sub.active = True
                for msg in sub.buffer:
                    conn.send(msg)
                sub.buffer = []

    @staticmethod
    def _deliver(sub, result_json):
        msg = ('{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"%s","result":%s}}'
               % (sub.id, result_json))
        if sub.active:
            sub.conn.send(msg)
        else:
            sub.buffer.append(msg)

    def on_block(self, rec):
        if not self._subs:
            return
        head_json = None
        log_json = {}
        for sub in list(self._subs.values()):
            if sub.kind == "newHeads":
                if head_json is None:
                    head_json = json.dumps(header_only(rec), separators=(",", ":"))
                self._deliver(sub, head_json)
            else:
                for i, log in enumerate(rec.logs):  # one log per notification, as geth sends them
                    if sub.filter.matches(log):
                        if i not in log_json:
                            log_json[i] = json.dumps(log, separators=(",", ":"))
                        self._deliver(sub, log_json[i])
