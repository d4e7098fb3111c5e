"""A client that stops reading: the server must disconnect it instead of queueing its responses without bound.

Opens a raw TCP connection, performs the WebSocket handshake by hand (so no client library reads on our behalf),
shrinks its receive buffer, then sends `--batches` batches of `--batch-size` eth_chainId calls and never reads.
It then waits until the server closes the connection (detected by a failing send or EOF once we finally look),
and reports how many bytes it managed to send. The Swift test checks the server side: the connection is gone
and other clients are unaffected.
"""

import base64
import json
import os
import socket
import struct
import sys
import time

from _common import base_parser, emit_result


def ws_frame(payload: bytes) -> bytes:
    # Client frames are masked (RFC 6455 §5.3); text opcode, FIN set.
    header = bytearray([0x81])
    length = len(payload)
    if length < 126:
        header.append(0x80 | length)
    elif length < 1 << 16:
        header.append(0x80 | 126)
        header += struct.pack(">H", length)
    else:
        header.append(0x80 | 127)
        header += struct.pack(">Q", length)
    mask = os.urandom(4)
    header += mask
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes(header) + masked


def main():
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--hold-seconds", type=float, default=20.0, help="how long to keep the socket without reading")
    args = p.parse_args()

    host_port = args.url.split("://", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=args.timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET / HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    # Read exactly the handshake response, nothing more.
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(1)
        if not chunk:
            sys.stderr.write("FAIL: connection closed during handshake\n")
            return 1
        response += chunk
    if b" 101 " not in response.split(b"\r\n", 1)[0]:
        sys.stderr.write(f"FAIL: handshake refused: {response!r}\n")
        return 1

    batch = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(args.batch_size)]).encode()
    frame = ws_frame(batch)
    sent = 0
    send_failed = None
    # Generous: on a loaded machine the server may take a while to read; what must stop us is the server closing.
    sock.settimeout(10.0)
    start = time.time()
    for _ in range(args.batches):
        try:
            sock.sendall(frame)
            sent += 1
        except (socket.timeout, OSError) as e:
            send_failed = repr(e)
            break
    print(f"SENT {sent} batches", flush=True)
    # Keep the socket open without reading; the Swift test watches the server drop us.
    time.sleep(args.hold_seconds)
    sock.settimeout(0.5)
    closed_by_server = False
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                closed_by_server = True
                break
    except (socket.timeout, ConnectionResetError, OSError):
        pass
    emit_result({"batches_sent": sent, "send_failed": send_failed, "seconds": round(time.time() - start, 2),
                 "closed_by_server": closed_by_server})
    return 0


if __name__ == "__main__":
    sys.exit(main())
