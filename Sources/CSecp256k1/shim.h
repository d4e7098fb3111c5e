// Debian's libsecp256k1-dev (0.2.0) ships the recovery module used for Ethereum's (r, s, v) signatures.
#include <secp256k1.h>
#include <secp256k1_recovery.h>
