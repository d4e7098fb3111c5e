"""Address/topic matching shared by eth_getLogs and `logs` subscriptions (geth filter semantics).

address: one address or a list (any matches; empty = all).
topics: positional; null = wildcard, a topic = exact, a list = any of them.
"""

from . import errors, hexcodec


class LogFilter:
    def __init__(self, addresses, topics):
        self.addresses = addresses  # set of "0x…" lowercase strings, or None
        self.topics = topics  # list of (set of "0x…" lowercase strings | None)

    @classmethod
    def parse(cls, obj):
        if obj is None:
            obj = {}
        if not isinstance(obj, dict):
            raise errors.invalid_params("invalid argument: filter must be an object")
        addresses = None
        a = obj.get("address")
        if isinstance(a, str):
            addresses = {hexcodec.addr(hexcodec.address(a))}
        elif isinstance(a, list):
            addresses = {hexcodec.addr(hexcodec.address(x)) for x in a} or None
        elif a is not None:
            raise errors.invalid_params("invalid argument: invalid addresses in query")
        topics = []
        raw_topics = obj.get("topics") or []
        if not isinstance(raw_topics, list):
            raise errors.invalid_params("invalid argument: invalid topics in query")
        if len(raw_topics) > 4:
            raise errors.invalid_params("invalid argument: too many topics in query (max 4)")
        for t in raw_topics:
            if t is None:
                topics.append(None)
            elif isinstance(t, str):
                topics.append({hexcodec.b(hexcodec.hash32(t, "topic"))})
            elif isinstance(t, list):
                options = {hexcodec.b(hexcodec.hash32(x, "topic")) for x in t if x is not None}
                topics.append(options if options and None not in t else None)
            else:
                raise errors.invalid_params("invalid argument: invalid topic(s)")
        return cls(addresses, topics)

    def matches(self, log):
        if self.addresses is not None and log["address"] not in self.addresses:
            return False
        log_topics = log["topics"]
        if len(self.topics) > len(log_topics):
            return False
        for want, have in zip(self.topics, log_topics):
            if want is not None and have not in want:
                return False
        return True
