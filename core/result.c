/* Names of the project-wide result codes, for log lines. */
#include "core/result.h"

#include <stddef.h>

const char *rf_result_name(enum rf_result r)
{
    static const char *const names[RF_ERR__COUNT] = {
        [RF_OK] = "ok",
        [RF_ERR_NOMEM] = "out_of_memory",
        [RF_ERR_BAD_REQUEST] = "bad_request",
        [RF_ERR_NO_IMAGE] = "no_image",
        [RF_ERR_BODY_TOO_LARGE] = "body_too_large",
        [RF_ERR_TOO_MANY_PARTS] = "too_many_parts",
        [RF_ERR_HEADER_TOO_LARGE] = "header_too_large",
        [RF_ERR_UNSUPPORTED] = "unsupported_format",
        [RF_ERR_TOO_MANY_PIXELS] = "too_many_pixels",
        [RF_ERR_DECODE] = "decode_failed",
        [RF_ERR_MODEL] = "model_failed",
        [RF_ERR_CONTRACT] = "model_contract",
        [RF_ERR_IO] = "io_error",
        [RF_ERR_CONFIG] = "config_error",
        [RF_ERR_BAD_QUERY] = "bad_query",
        [RF_ERR_QUEUE_TIMEOUT] = "queue_timeout",
    };

    if ((unsigned)r >= RF_ERR__COUNT || names[r] == NULL) {
        return "unknown";
    }
    return names[r];
}
