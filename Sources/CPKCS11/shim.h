// The PKCS#11 (Cryptoki 2.40) header from Debian's libp11-kit-dev, in its standard-names mode. Nothing is linked:
// the gateway loads the configured module (CloudHSM's, SoftHSM's, any HSM vendor's) with dlopen at run time.
#define CRYPTOKI_COMPAT 1
#include <p11-kit-1/p11-kit/pkcs11.h>
