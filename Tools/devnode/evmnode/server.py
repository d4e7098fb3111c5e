"""aiohttp server: JSON-RPC over HTTP (POST /) and WebSocket (GET / upgrade) on one port.

Everything runs on one asyncio thread: py-evm is synchronous and not thread-safe,
so each request is handled to completion before the next, which also gives the
"batch items run in order" guarantee for free.
"""

import asyncio
import logging
import signal
import sys

from aiohttp import WSMsgType, web

from . import rpc
from .methods import Context
from .subscriptions import Hub

HTTP_BODY_LIMIT = 5 * 1024 * 1024  # geth: 5 MiB
WS_READ_LIMIT = 32 * 1024 * 1024  # geth: 32 MiB
WS_PING_SECONDS = 30.0  # geth pings after 30 s idle
WS_OUTBOX_LIMIT = 100_000  # a client this far behind is disconnected instead of eating memory
ACCEPTED_CONTENT_TYPES = {"application/json", "application/json-rpc", "application/jsonrequest"}
log = logging.getLogger("devnode")


class WsConnection:
    """One WebSocket client: a FIFO outbox drained by a single writer task, so responses
    and notifications never interleave mid-frame and keep their order."""

    def __init__(self, ws):
        self.ws = ws
        self.subs = {}
        self.outbox = asyncio.Queue()
        self.closing = False

    def send(self, text):
        if self.closing:
            return
        if self.outbox.qsize() >= WS_OUTBOX_LIMIT:
            log.warning("websocket client too slow, closing")
            self.closing = True
            asyncio.get_running_loop().create_task(self.ws.close())
            return
        self.outbox.put_nowait(text)

    async def writer(self):
        while True:
            text = await self.outbox.get()
            if text is None:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                self.closing = True
                return


class Server:
    def __init__(self, node, accounts, host, port, block_time_ms):
        self.node = node
        self.accounts = accounts
        self.host, self.port = host, port
        self.block_time = block_time_ms / 1000.0
        self.hub = Hub(node)
        self.http_ctx = Context(node, self.hub, accounts, None)
        self.sockets = set()

    async def http(self, request):
        if request.content_type not in ACCEPTED_CONTENT_TYPES:
            return web.Response(status=415, text="invalid content type, only application/json is supported")
        body = await request.read()
        out = rpc.handle(self.http_ctx, body)
        return web.Response(body=(out or "").encode(), content_type="application/json")

    async def get(self, request):
        ws = web.WebSocketResponse(max_msg_size=WS_READ_LIMIT, heartbeat=WS_PING_SECONDS)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="JSON-RPC: POST a request or open a WebSocket on this URL\n")
        await ws.prepare(request)
        conn = WsConnection(ws)
        ctx = Context(self.node, self.hub, self.accounts, conn)
        writer = asyncio.get_running_loop().create_task(conn.writer())
        self.sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):  # web.py sends binary frames
                    out = rpc.handle(ctx, msg.data)
                    if out is not None:
                        conn.send(out)
                    # Only now may new subscriptions emit: their id has been queued first.
                    self.hub.activate(conn)
                    # Pitfall 9: a client pipelining requests would otherwise keep this loop
                    # busy (aiohttp returns buffered frames without yielding) and starve
                    # other connections' writers and the miner.
                    await asyncio.sleep(0)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.hub.drop_connection(conn)
            conn.outbox.put_nowait(None)
            try:
                await asyncio.wait_for(writer, 5)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                writer.cancel()
            self.sockets.discard(ws)
        return ws

    async def miner(self):
        loop = asyncio.get_running_loop()
        due = loop.time() + self.block_time
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                self.node.mine()
            except Exception:
                log.exception("mining failed")
            due += self.block_time
            if due < loop.time():  # fell behind (slow block): do not mine a burst to catch up
                due = loop.time() + self.block_time

    async def _close_sockets(self, _app):
        for ws in list(self.sockets):
            await ws.close(code=1000, message=b"server shutdown")

    async def serve(self):
        app = web.Application(client_max_size=HTTP_BODY_LIMIT)
        app.router.add_post("/", self.http)
        app.router.add_get("/", self.get)
        app.on_shutdown.append(self._close_sockets)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        port = runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        sys.stdout.write(f"devnode listening on http://{host}:{port} (ws://{host}:{port})\n")
        sys.stdout.flush()

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        miner = loop.create_task(self.miner()) if self.block_time > 0 else None
        await stop.wait()
        if miner:
            miner.cancel()
        await runner.cleanup()  # closes listeners, then open websockets (on_shutdown)
