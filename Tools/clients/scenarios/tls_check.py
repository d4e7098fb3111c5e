"""TLS check: connect over wss:// (and https://) trusting only --ca-file, call eth_chainId on both transports.

Also checks that a client which does not trust the CA is refused (certificate verification fails).
"""

import asyncio
import json
import ssl
import sys
import urllib.request

import websockets

from _common import base_parser, check, emit_result, run_main


async def scenario(args):
    context = ssl.create_default_context(cafile=args.ca_file)
    async with websockets.connect(args.url, ssl=context, open_timeout=args.timeout) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}))
        answer = json.loads(await asyncio.wait_for(ws.recv(), args.timeout))
        check("result" in answer, "wss eth_chainId answered", "a result", answer)
        version = ws.transport.get_extra_info("ssl_object").version()
    https = args.url.replace("wss://", "https://", 1)
    request = urllib.request.Request(https, data=b'{"jsonrpc":"2.0","id":2,"method":"eth_chainId"}',
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=context, timeout=args.timeout) as response:
        body = json.loads(response.read())
    check(body.get("result") == answer["result"], "https eth_chainId matches wss", answer["result"], body)
    refused = False
    try:
        async with websockets.connect(args.url, ssl=ssl.create_default_context(), open_timeout=args.timeout):
            pass
    except ssl.SSLCertVerificationError:
        refused = True
    check(refused, "a client that does not trust the CA is refused", True, refused)
    return {"chain_id": answer["result"], "tls_version": version}


def main():
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--ca-file", required=True)
    args = p.parse_args()
    return run_main(lambda: scenario(args))


if __name__ == "__main__":
    sys.exit(main())
