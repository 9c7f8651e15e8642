/* SHA-256 of the model bytes, for the model's label in /metrics and logs. */
#ifndef REFACE_FCGI_DIGEST_H
#define REFACE_FCGI_DIGEST_H

#include <stddef.h>

#define DIGEST_HEX_SIZE 65

/*
 * Writes the lower-case hex SHA-256 of `len` bytes at `data` into `hex`
 * (DIGEST_HEX_SIZE bytes). Returns 0, or -1 (and "unknown") if OpenSSL
 * fails.
 */
int digest_sha256_hex(const void *data, size_t len,
                      char hex[DIGEST_HEX_SIZE]);

#endif
