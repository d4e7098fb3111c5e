"""JSON-RPC errors, with the exact strings go-ethereum uses.

Clients (ethers, viem, web3.py, the SignerGateway itself) classify failures by
matching these messages, so they are kept byte-for-byte as geth spells them.
geth sometimes appends details after a colon (e.g. "nonce too low: next nonce 3,
tx nonce 1"); we send the bare prefix, which every known client regex accepts.
"""

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
REVERT = 3  # geth's code for execution reverted in eth_call / eth_estimateGas

# txpool / state-transition errors (code -32000)
NONCE_TOO_LOW = "nonce too low"
NONCE_TOO_HIGH = "nonce too high"
ALREADY_KNOWN = "already known"
INSUFFICIENT_FUNDS = "insufficient funds for gas * price + value"
INTRINSIC_GAS = "intrinsic gas too low"
FLOOR_DATA_GAS = "insufficient gas for floor data gas cost"
FEE_CAP_TOO_LOW = "max fee per gas less than block base fee"
REPLACEMENT_UNDERPRICED = "replacement transaction underpriced"
UNDERPRICED = "transaction underpriced"
INVALID_SENDER = "invalid sender"
INVALID_CHAIN_ID = "invalid chain id for signer"
UNPROTECTED = "only replay-protected (EIP-155) transactions allowed over RPC"
TIP_ABOVE_FEE_CAP = "max priority fee per gas higher than max fee per gas"
GAS_LIMIT = "exceeds block gas limit"
OVERSIZED = "oversized data"
TX_TYPE_NOT_SUPPORTED = "transaction type not supported"
POOL_FULL = "txpool is full"


class RpcError(Exception):
    """An error that becomes a JSON-RPC error object."""

    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self):
        err = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def tx_error(message):
    """A transaction-pool rejection: always code -32000 in geth."""
    return RpcError(SERVER_ERROR, message)


def invalid_params(message):
    return RpcError(INVALID_PARAMS, message)
