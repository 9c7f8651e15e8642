/* Result code to HTTP status and client message (see fcgi/status.h). */
#include "fcgi/status.h"

static const struct status_map table[RF_ERR__COUNT] = {
    [RF_OK] = { 200, "OK" },
    [RF_ERR_NOMEM] = { 503, "Server busy, retry later" },
    [RF_ERR_BAD_REQUEST] = { 400, "Missing 'image' field in request" },
    [RF_ERR_NO_IMAGE] = { 400, "Missing 'image' field in request" },
    [RF_ERR_BODY_TOO_LARGE] = { 413, "Request body too large" },
    [RF_ERR_TOO_MANY_PARTS] = { 400, "Too many parts in multipart body" },
    [RF_ERR_HEADER_TOO_LARGE] = { 400, "Multipart part header too large" },
    [RF_ERR_UNSUPPORTED] = { 415, "Unsupported image format" },
    [RF_ERR_TOO_MANY_PIXELS] = { 413, "Image dimensions too large" },
    [RF_ERR_DECODE] = { 400, "Image could not be decoded" },
    [RF_ERR_MODEL] = { 500, "Prediction failed: model error" },
    [RF_ERR_CONTRACT] = { 500, "Prediction failed: model error" },
    [RF_ERR_IO] = { 500, "Prediction failed: internal error" },
    [RF_ERR_CONFIG] = { 500, "Prediction failed: internal error" },
    [RF_ERR_BAD_QUERY] = { 400, "Invalid query parameter" },
    [RF_ERR_QUEUE_TIMEOUT] = { 503, "Server busy, retry later" },
};

const struct status_map *status_for(enum rf_result r)
{
    static const struct status_map fallback = {
        500, "Prediction failed: internal error"
    };

    if ((unsigned)r >= RF_ERR__COUNT || table[r].message == 0) {
        return &fallback;
    }
    return &table[r];
}

const char *status_reason(int http)
{
    switch (http) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}
