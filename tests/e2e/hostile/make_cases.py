"""Writes the hostile request corpus: cases/<name>.http (the raw bytes sent
to nginx) and expected.tsv (name, status, the JSON error message or "-"
for a 200 prediction or "none" when nginx must close without an answer,
and flags). Run from the repository root with /usr/bin/python3 only to
change the corpus; test_hostile.sh reads the committed files.

The images come from tests/unit/image (generated there by PIL) and
images/ffhq_00064.jpg (FFHQ, see images/README.md for its licence).
"""
import os
import struct
import zlib

ROOT = "tests/e2e/hostile"
UNIT = "tests/unit/image"
BND = "HostileBoundary9f2c"
MISSING = "Missing 'image' field in request"
DECODE = "Image could not be decoded"
UNSUPPORTED = "Unsupported image format"
PIXELS = "Image dimensions too large"
NOT_FOUND = "Not found"
METHOD = "Method not allowed"
BAD_REQUEST = "Bad request"

cases = []


def read(path):
    with open(path, "rb") as f:
        return f.read()


FACE = read("images/ffhq_00064.jpg")
PNG = read(UNIT + "/rgb37x23.png")
JPG = read(UNIT + "/photo40x30.jpg")
GIF = read(UNIT + "/pal24x17.gif")
BMP = read(UNIT + "/rgb13x9.bmp")


def part(name, data, filename="upload.jpg", ctype="image/jpeg",
         extra=b""):
    head = b"--" + BND.encode() + b"\r\n"
    head += b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        head += b'; filename="' + filename.encode("latin-1") + b'"'
    head += b"\r\nContent-Type: " + ctype.encode() + b"\r\n" + extra
    return head + b"\r\n" + data + b"\r\n"


def form(*parts):
    return b"".join(parts) + b"--" + BND.encode() + b"--\r\n"


def http(method, path, body=b"", ctype=None, length=None, extra=b"",
         version=b"HTTP/1.1"):
    req = method.encode() + b" " + path.encode("latin-1") + b" " + version
    req += b"\r\nHost: localhost\r\nConnection: close\r\n"
    if ctype is not None:
        req += b"Content-Type: " + ctype.encode("latin-1") + b"\r\n"
    if length is None and (body or method in ("POST", "PUT", "PATCH")):
        length = str(len(body))
    if length is not None and length is not False:
        req += b"Content-Length: " + length.encode() + b"\r\n"
    return req + extra + b"\r\n" + body


def upload(name, data, status, error, path="/predict", flags="-"):
    """A well-formed POST of `data` as the image field."""
    body = form(part(b"image", data))
    add(name, http("POST", path, body, "multipart/form-data; boundary=" + BND),
        status, error, flags)


def add(name, raw, status, error, flags="-"):
    cases.append((name, raw, status, error, flags))


def png_chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data +
            struct.pack(">I", zlib.crc32(kind + data)))


def png_header(w, h, rest=b""):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + rest


def png_zero_bomb(w, h):
    """A real PNG of w x h black pixels: deflate makes it tiny."""
    raw = zlib.compress(b"\0" * ((3 * w + 1) * h), 9)
    return png_header(w, h, png_chunk(b"IDAT", raw) +
                      png_chunk(b"IEND", b""))


def jpeg_sof(w, h):
    """SOI, a baseline SOF0 claiming w x h, then nothing."""
    sof = struct.pack(">BHHB", 8, h, w, 3)
    for c in (1, 2, 3):
        sof += bytes([c, 0x11, 0])
    return (b"\xff\xd8\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof +
            b"\0" * 64)


def gif_header(w, h):
    return b"GIF89a" + struct.pack("<HHBBB", w, h, 0, 0, 0) + b"\0" * 64


def bmp_header(w, h, bpp=24, offset=54):
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, bpp, 0, 0, 2835, 2835,
                       0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 64, 0, 0, offset) + info + \
        b"\0" * 64


# --- images that do not decode: 400 -----------------------------------------
upload("jpeg_soi_only", b"\xff\xd8\xff\xe0", 400, DECODE)
upload("jpeg_header_only", FACE[:400], 400, DECODE)
upload("jpeg_sof_no_scan", jpeg_sof(64, 64), 400, DECODE)
jpeg_bad_dht = bytearray(JPG)
at = jpeg_bad_dht.find(b"\xff\xc4")
jpeg_bad_dht[at + 5:at + 21] = bytes([17]) * 16
upload("jpeg_dht_counts_over_256", bytes(jpeg_bad_dht), 400, DECODE)
upload("jpeg_zero_width", jpeg_sof(0, 64), 400, DECODE)
# Eight bytes are not enough for libmagic to call it PNG.
upload("png_signature_only", PNG[:8], 415, UNSUPPORTED)
upload("png_truncated_in_ihdr", PNG[:20], 400, DECODE)
upload("png_truncated_in_idat", PNG[:len(PNG) // 2], 400, DECODE)
png_bad_zlib = bytearray(PNG)
at = png_bad_zlib.find(b"IDAT")
png_bad_zlib[at + 4:at + 12] = b"\xff" * 8
upload("png_corrupt_zlib", bytes(png_bad_zlib), 400, DECODE)
upload("png_no_idat", png_header(16, 16, png_chunk(b"IEND", b"")), 400,
       DECODE)
upload("png_zero_size", png_header(0, 0, png_chunk(b"IEND", b"")), 400,
       DECODE)
upload("gif_header_only", GIF[:13], 400, DECODE)
upload("gif_truncated", GIF[:len(GIF) // 3], 400, DECODE)
gif_bad_lzw = bytearray(GIF)
at = gif_bad_lzw.find(b",")
gif_bad_lzw[at + 10] = 0x0f
upload("gif_bad_lzw_code_size", bytes(gif_bad_lzw), 400, DECODE)
upload("bmp_header_only", BMP[:30], 400, DECODE)
upload("bmp_zero_bpp", bmp_header(8, 8, bpp=0), 400, DECODE)
upload("bmp_offset_past_end", bmp_header(8, 8, offset=0x7fffff00), 400,
       DECODE)

# --- decompression bombs: refused from the header, 413 ----------------------
upload("png_claims_8000x8000", png_header(8000, 8000, b"\0" * 64), 413,
       PIXELS)
upload("png_claims_6325x6325", png_header(6325, 6325, b"\0" * 64), 413,
       PIXELS)
upload("png_claims_1x2147483647", png_header(1, 0x7fffffff, b"\0" * 64),
       413, PIXELS)
upload("png_real_zlib_bomb_8000x8000", png_zero_bomb(8000, 8000), 413,
       PIXELS)
upload("jpeg_claims_65000x65000", jpeg_sof(65000, 65000), 413, PIXELS)
upload("jpeg_claims_20000x20000", jpeg_sof(20000, 20000), 413, PIXELS)
upload("gif_claims_65535x65535", gif_header(65535, 65535), 413, PIXELS)
upload("bmp_claims_100000x100000", bmp_header(100000, 100000), 413, PIXELS)
# Top-down BMPs store a negative height (this case found a bug: see
# test_image's test_bmp_top_down).
upload("bmp_claims_negative_height", bmp_header(30000, -30000), 413, PIXELS)

# --- not an image we accept: 415 --------------------------------------------
upload("zero_byte_part", b"", 415, UNSUPPORTED)
upload("one_byte_part", b"\xff", 415, UNSUPPORTED)
upload("text_named_jpg", b"just some words, nothing else\n", 415,
       UNSUPPORTED)
upload("html_named_png", b"<!DOCTYPE html><html><script>alert(1)</script>"
       b"</html>\n", 415, UNSUPPORTED)
upload("svg_image", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" '
       b'height="9"><rect width="9" height="9"/></svg>\n', 415, UNSUPPORTED)
upload("pdf_document", read(UNIT + "/refuse.pdf"), 415, UNSUPPORTED)
upload("webp_image", read(UNIT + "/refuse.webp"), 415, UNSUPPORTED)
upload("tiff_image", read(UNIT + "/refuse.tiff"), 415, UNSUPPORTED)
upload("elf_binary", b"\x7fELF\x02\x01\x01" + b"\0" * 120, 415, UNSUPPORTED)
upload("gzip_of_a_jpeg", zlib.compress(FACE), 415, UNSUPPORTED)

# --- polyglots ----------------------------------------------------------------
# A GIF header that is also JavaScript: libmagic says GIF, stb refuses it.
upload("gif_javascript_polyglot", b"GIF89a/*\x0a\x00\x0a\x00\x00\x00\x00*/"
       b"=1;alert(document.domain);//" + b"\0" * 32, 400, DECODE)
# A real JPEG with a ZIP archive appended: the image part is valid.
zip_tail = (b"PK\x03\x04" + b"\0" * 26 + b"PK\x05\x06" + b"\0" * 18)
upload("jpeg_zip_polyglot", FACE + zip_tail, 200, "-")
# A real PNG followed by an HTML page after IEND.
upload("png_html_polyglot", PNG + b"<html><script>x()</script></html>",
       200, "-")

# --- multipart framing --------------------------------------------------------
good = form(part(b"image", FACE))
mp = "multipart/form-data; boundary="
add("boundary_wrong", http("POST", "/predict", good, mp + "NotTheBoundary"),
    400, MISSING)
add("boundary_missing", http("POST", "/predict", good, "multipart/form-data"),
    400, MISSING)
add("boundary_empty", http("POST", "/predict", good, mp), 400, MISSING)
long_bnd = "b" * 71
add("boundary_71_chars", http("POST", "/predict",
                              good.replace(BND.encode(), long_bnd.encode()),
                              mp + long_bnd), 400, MISSING)
ok_bnd = "c" * 70
add("boundary_70_chars_is_fine",
    http("POST", "/predict", good.replace(BND.encode(), ok_bnd.encode()),
         mp + ok_bnd), 200, "-")
add("content_type_json", http("POST", "/predict", good, "application/json"),
    400, MISSING)
add("content_type_missing", http("POST", "/predict", good), 400, MISSING)
add("body_ends_mid_part",
    http("POST", "/predict", good[:len(good) // 2], mp + BND), 400, MISSING)
add("body_ends_mid_header",
    http("POST", "/predict", good[:60], mp + BND), 400, MISSING)
add("no_closing_delimiter",
    http("POST", "/predict", part(b"image", FACE), mp + BND), 400, MISSING)
add("no_image_field", http("POST", "/predict",
                           form(part(b"file", FACE)), mp + BND), 400, MISSING)
add("image_name_in_latin1",
    http("POST", "/predict", form(part(b"imag\xe9", FACE)), mp + BND),
    400, MISSING)
add("filename_not_utf8",
    http("POST", "/predict",
         form(part(b"image", FACE, filename="\xff\xfe\x80.jpg")), mp + BND),
    200, "-")
add("thousands_of_parts",
    http("POST", "/predict",
         form(*[part(b"f%d" % i, b"x", None) for i in range(5000)],
              part(b"image", FACE)), mp + BND), 400,
    "Too many parts in multipart body")
add("seventeen_parts",
    http("POST", "/predict",
         form(*[part(b"f%d" % i, b"x", None) for i in range(16)],
              part(b"image", FACE)), mp + BND), 400,
    "Too many parts in multipart body")
add("sixteen_parts_is_fine",
    http("POST", "/predict",
         form(*[part(b"f%d" % i, b"x", None) for i in range(15)],
              part(b"image", FACE)), mp + BND), 200, "-")
add("huge_part_header",
    http("POST", "/predict",
         form(part(b"image", FACE, extra=b"X-Pad: " + b"a" * 9000 + b"\r\n")),
         mp + BND), 400, "Multipart part header too large")

# --- methods and paths --------------------------------------------------------
add("put_predict", http("PUT", "/predict", good, mp + BND), 405, METHOD)
add("delete_images", http("DELETE", "/images"), 405, METHOD)
add("patch_predict", http("PATCH", "/predict", good, mp + BND), 405, METHOD)
add("options_predict", http("OPTIONS", "/predict"), 405, METHOD)
add("post_health", http("POST", "/health", good, mp + BND), 405, METHOD)
add("path_trailing_slash", http("POST", "/predict/", good, mp + BND), 404,
    NOT_FOUND)
add("path_upper_case", http("POST", "/PREDICT", good, mp + BND), 404,
    NOT_FOUND)
add("path_traversal", http("GET", "/../../etc/passwd"), 400, BAD_REQUEST)
add("path_encoded_traversal", http("GET", "/%2e%2e/%2e%2e/etc/passwd"), 400,
    BAD_REQUEST)
add("path_with_query_still_routes",
    http("POST", "/predict?debug=1", good, mp + BND), 200, "-")
add("path_percent_encoded_route",
    http("POST", "/%70redict", good, mp + BND), 200, "-")
add("path_script_name", http("GET", "/index.php"), 404, NOT_FOUND)

# --- lying Content-Length and framing ----------------------------------------
add("content_length_short",
    http("POST", "/predict", good, mp + BND, length=str(len(good) // 2)),
    400, MISSING)
add("content_length_long_then_close",
    http("POST", "/predict", good, mp + BND, length=str(len(good) + 5000)),
    "none", "-", "half-close")
add("content_length_negative",
    http("POST", "/predict", good, mp + BND, length="-1"), 400, BAD_REQUEST)
add("content_length_not_a_number",
    http("POST", "/predict", good, mp + BND, length="12abc"), 400,
    BAD_REQUEST)
add("content_length_and_chunked",
    http("POST", "/predict", good, mp + BND,
         extra=b"Transfer-Encoding: chunked\r\n"), 400, BAD_REQUEST)
chunked = b"%x\r\n" % len(good) + good + b"\r\n0\r\n\r\n"
add("chunked_body_is_fine",
    http("POST", "/predict", chunked, mp + BND, length=False,
         extra=b"Transfer-Encoding: chunked\r\n"), 200, "-")
add("content_length_over_10mb",
    http("POST", "/predict", b"", mp + BND, length="999999999"), 413,
    "Request body too large", "half-close")


def main():
    os.makedirs(ROOT + "/cases", exist_ok=True)
    for old in os.listdir(ROOT + "/cases"):
        os.unlink(ROOT + "/cases/" + old)
    with open(ROOT + "/expected.tsv", "w") as out:
        out.write("# name\tstatus\terror (- = 200 with a prediction)\t"
                  "flags\n")
        for name, raw, status, error, flags in cases:
            with open(ROOT + "/cases/" + name + ".http", "wb") as f:
                f.write(raw)
            out.write("%s\t%s\t%s\t%s\n" % (name, status, error, flags))
    print("%d cases" % len(cases))


main()
