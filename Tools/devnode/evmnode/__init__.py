"""devnode: a small Ethereum JSON-RPC node on loopback, built on py-evm (via eth-tester).

Module map (one idea per file):
  config.py        command-line flags
  accounts.py      deterministic dev keys and genesis allocation
  errors.py        JSON-RPC error type and geth's exact error strings
  hexcodec.py      strict parsing of JSON-RPC inputs (quantities, data, addresses, block tags)
  render.py        py-evm objects -> JSON-RPC dicts (hex quantities, camelCase)
  admission.py     checks a raw transaction must pass before it reaches the EVM
  node.py          the chain: pending block, future-nonce queue, mining, lookups
  stuck.py         txs below the miner's tip: accepted, kept out of blocks
  ordered_trie.py  one-pass tx/receipt trie roots for mining
  execution.py     eth_call / eth_estimateGas on a throw-away state
  feehistory.py    eth_feeHistory computed from headers and transactions
  logfilter.py     address/topic matching shared by eth_getLogs and logs subscriptions
  subscriptions.py eth_subscribe bookkeeping and notification ordering
  methods.py       the JSON-RPC method table
  rpc.py           JSON-RPC envelope: batches, ids, error objects
  server.py        aiohttp HTTP + WebSocket server and the interval miner
"""
