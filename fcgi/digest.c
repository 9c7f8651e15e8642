/* SHA-256 through OpenSSL's libcrypto EVP interface (fcgi/digest.h). */
#include "fcgi/digest.h"

#include <openssl/evp.h>
#include <stdio.h>

int digest_sha256_hex(const void *data, size_t len,
                      char hex[DIGEST_HEX_SIZE])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen != 32) {
        snprintf(hex, DIGEST_HEX_SIZE, "unknown");
        return -1;
    }
    for (unsigned int i = 0; i < mdlen; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    return 0;
}
