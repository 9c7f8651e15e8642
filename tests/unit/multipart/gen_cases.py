#!/usr/bin/env python3
"""Writes the data-driven cases of tests/unit/test_multipart.c.

Each case is a folder holding:
  content_type  the Content-Type value, one line
  body          the raw request body (CRLFs are real bytes)
  expected      key=value lines: result= (an rf_result_name), and optionally
                find= (part name to look for, default "image"), len=,
                filename= ("(none)" when absent), index= (position among all
                parts), parts= (named parts mp_parse delivers); '#' comments
  data          optional: the exact bytes of the found part
  limits        optional: max_parts= and max_header_bytes= (default 16, 1024)

The generated files are committed; run this again after editing a case:
  python3 tests/unit/multipart/gen_cases.py tests/unit/multipart
Cases added by hand (e.g. from a fuzzer crash) live beside these; the script
only rewrites the folders it knows.
"""

import os
import sys

CT = "multipart/form-data; boundary=XbOuNdArY"
B = b"XbOuNdArY"
JPEG = bytes([0xFF, 0xD8, 0xFF, 0xE0]) + b"\x00\x10JFIF\x00" + b"\xff\xd9"


def part(name=None, data=b"", filename=None, headers=None, b=B):
    """One part, from its delimiter line to the end of its data."""
    out = b"--" + b + b"\r\n"
    if name is not None:
        cd = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            cd += b'; filename="' + filename + b'"'
        out += cd + b"\r\n"
    for h in headers or []:
        out += h + b"\r\n"
    return out + b"\r\n" + data + b"\r\n"


def close(b=B):
    return b"--" + b + b"--\r\n"


CASES = []


def case(name, why, body, result, ct=CT, data=None, limits=None, **exp):
    CASES.append((name, why, ct, body, result, data, limits, exp))


def build():
    img = part(b"image", JPEG, b"a.jpg", [b"Content-Type: image/jpeg"])

    case("basic", "one image part with a filename",
         img + close(), "ok", data=JPEG, filename="a.jpg", index=0, parts=1)
    case("basic_two_fields", "a text field then the image",
         part(b"note", b"hello") + img + close(), "ok", data=JPEG,
         index=1, parts=2)
    case("boundary_quoted", "quoted boundary using RFC 2046 punctuation",
         part(b"image", b"q", b=b"a'()+_,-./:=?z") + close(b"a'()+_,-./:=?z"),
         "ok", ct="multipart/form-data; boundary=\"a'()+_,-./:=?z\"",
         data=b"q")
    case("boundary_quoted_spaces", "quoted boundary with inner spaces",
         part(b"image", b"sp", b=b"a b  c") + close(b"a b  c"), "ok",
         ct='multipart/form-data; boundary="a b  c"', data=b"sp")
    case("boundary_unquoted_curl", "curl's unquoted dash boundary",
         part(b"image", b"c", b=b"-" * 24 + b"d74496d66958873e")
         + close(b"-" * 24 + b"d74496d66958873e"), "ok",
         ct="multipart/form-data; boundary=" + "-" * 24 + "d74496d66958873e",
         data=b"c")
    case("boundary_unquoted_equals", "a bare boundary with '=' in it",
         part(b"image", b"e", b=b"----=_Part_1") + close(b"----=_Part_1"),
         "ok", ct="multipart/form-data; boundary=----=_Part_1", data=b"e")
    case("boundary_70", "a boundary of exactly 70 characters",
         part(b"image", b"7", b=b"b" * 70) + close(b"b" * 70), "ok",
         ct="multipart/form-data; boundary=" + "b" * 70, data=b"7")
    case("boundary_71", "a boundary of 71 characters is over RFC 2046",
         part(b"image", b"7", b=b"b" * 71) + close(b"b" * 71), "bad_request",
         ct="multipart/form-data; boundary=" + "b" * 71)
    case("boundary_empty_quoted", "boundary=\"\"",
         img + close(), "bad_request",
         ct='multipart/form-data; boundary=""')
    case("boundary_empty_bare", "boundary= with nothing after it",
         img + close(), "bad_request", ct="multipart/form-data; boundary=")
    case("boundary_missing", "no boundary parameter at all",
         img + close(), "bad_request", ct="multipart/form-data")
    case("boundary_twice", "two boundary parameters are ambiguous",
         img + close(), "bad_request",
         ct="multipart/form-data; boundary=XbOuNdArY; boundary=other")
    case("wrong_content_type", "multipart/mixed is not a form",
         img + close(), "bad_request",
         ct="multipart/mixed; boundary=XbOuNdArY")
    case("wrong_content_type_urlencoded", "a urlencoded form",
         b"image=abc", "bad_request",
         ct="application/x-www-form-urlencoded")
    case("content_type_suffix", "multipart/form-datax is another type",
         img + close(), "bad_request",
         ct="multipart/form-datax; boundary=XbOuNdArY")
    case("content_type_uppercase", "media type and parameter name in caps",
         img + close(), "ok", ct="MULTIPART/FORM-DATA; BOUNDARY=XbOuNdArY",
         data=JPEG)
    case("charset_before_boundary", "another parameter first",
         img + close(), "ok", data=JPEG,
         ct="multipart/form-data; charset=utf-8; boundary=XbOuNdArY")

    case("preamble", "text before the first delimiter is ignored, even "
         "text holding the boundary mid-line",
         b"This is the preamble --XbOuNdArY not at a line start.\r\n"
         + img + close(), "ok", data=JPEG)
    case("preamble_crlf_only", "a body opening with CRLF then delimiter",
         b"\r\n" + img + close(), "ok", data=JPEG)
    case("epilogue", "anything after the close delimiter is ignored",
         img + close() + b"epilogue\r\n--XbOuNdArY\r\ngarbage\x00\xff",
         "ok", data=JPEG)
    case("close_without_crlf", "close delimiter at the very end",
         img + b"--XbOuNdArY--", "ok", data=JPEG)
    case("close_with_padding", "padding after the close delimiter",
         img + b"--XbOuNdArY--  \t\r\n", "ok", data=JPEG)
    case("transport_padding", "spaces and tabs after delimiters",
         img.replace(b"--XbOuNdArY\r\n", b"--XbOuNdArY \t \r\n")
         + part(b"x", b"y").replace(b"\r\n", b"\t\r\n", 1) + close(),
         "ok", data=JPEG, parts=2)
    case("delimiter_followed_by_junk", "--boundary then other characters "
         "on the line: RFC 2046 forbids the boundary in data",
         part(b"image", b"a\r\n--XbOuNdArYZ\r\nb") + close(), "bad_request")
    case("delimiter_first_followed_by_junk", "same for the first line",
         b"--XbOuNdArYZ\r\n" + img + close(), "bad_request")

    case("missing_close", "the image part is complete, then a delimiter "
         "line and nothing: a body that never closes is malformed",
         img + b"--XbOuNdArY\r\n", "bad_request")
    case("missing_close_bare", "ends right after the last boundary",
         img + b"--XbOuNdArY", "bad_request")
    case("missing_close_half", "ends after one dash of the close",
         img + b"--XbOuNdArY-", "bad_request")
    case("ends_mid_part", "body cut inside the image data",
         b"--XbOuNdArY\r\nContent-Disposition: form-data; name=\"image\""
         b"\r\n\r\n" + JPEG[:5], "bad_request")
    case("ends_mid_header", "body cut inside a header line",
         b"--XbOuNdArY\r\nContent-Disposition: form-da", "bad_request")
    case("ends_after_headers", "body cut right after the empty line",
         b"--XbOuNdArY\r\nContent-Disposition: form-data; name=image"
         b"\r\n\r\n", "bad_request")
    case("empty_body", "no bytes at all", b"", "bad_request")
    case("no_delimiter", "a body that never mentions the boundary",
         b"just some bytes\r\n", "bad_request")
    case("empty_form", "only the close delimiter: a form without fields",
         close(), "no_image", parts=0)

    case("unnamed_parts_skipped", "a part without Content-Disposition, one "
         "without name, one of type attachment, one without any header",
         part(None, b"anon", headers=[b"Content-Type: text/plain"])
         + b"--XbOuNdArY\r\nContent-Disposition: form-data; "
         b"filename=\"f.txt\"\r\n\r\nfile\r\n"
         + b"--XbOuNdArY\r\nContent-Disposition: attachment; name=image"
         b"\r\n\r\natt\r\n"
         + b"--XbOuNdArY\r\n\r\nnoheaders\r\n"
         + img + close(), "ok", data=JPEG, index=4, parts=1)
    case("no_image", "a valid body with other fields only",
         part(b"photo", JPEG) + part(b"note", b"x") + close(), "no_image",
         parts=2)
    case("attachment_only", "disposition type other than form-data",
         b"--XbOuNdArY\r\nContent-Disposition: attachment; name=\"image\""
         b"\r\n\r\nzz\r\n" + close(), "no_image", parts=0)
    case("duplicate_fields_first_wins", "two parts named image",
         part(b"image", b"first") + part(b"image", b"second") + close(),
         "ok", data=b"first", index=0, parts=2)
    case("duplicate_name_param", "name given twice in one disposition",
         b"--XbOuNdArY\r\nContent-Disposition: form-data; name=\"a\"; "
         b"name=\"image\"\r\n\r\nzz\r\n" + close(), "bad_request")
    case("duplicate_disposition_header", "two Content-Disposition lines",
         b"--XbOuNdArY\r\nContent-Disposition: form-data; name=\"a\"\r\n"
         b"Content-Disposition: form-data; name=\"image\"\r\n\r\nzz\r\n"
         + close(), "bad_request")
    case("header_case_insensitive", "header, type and parameter names in "
         "mixed case, unquoted token name",
         b"--XbOuNdArY\r\ncontent-DISPOSITION: Form-Data; NAME=image; "
         b"FileName=x.png\r\n\r\npng\r\n" + close(), "ok", data=b"png",
         filename="x.png")
    case("name_unquoted", "a token name",
         b"--XbOuNdArY\r\nContent-Disposition: form-data;name=image\r\n"
         b"\r\ntok\r\n" + close(), "ok", data=b"tok", filename="(none)")
    case("name_escaped_quote", "a quoted name holding an escaped quote",
         part(b'im\\"age', b"esc") + part(b"image", b"plain") + close(),
         "ok", find='im"age', data=b"esc", index=0)
    case("name_escaped_plain", "backslash before ordinary characters",
         part(b"ima\\ge", b"bs") + close(), "ok", data=b"bs")
    case("name_unterminated", "a quoted name without its closing quote",
         b"--XbOuNdArY\r\nContent-Disposition: form-data; name=\"image\r\n"
         b"\r\nzz\r\n" + close(), "bad_request")
    case("name_empty", "name=\"\" is a name, just not image",
         part(b"", b"e") + close(), "no_image", parts=1)
    case("name_non_utf8", "name bytes that are not UTF-8 are accepted",
         part(b"\xff\xfe\xc3\x28", b"raw") + img + close(), "ok",
         data=JPEG, parts=2)
    case("name_non_utf8_find", "and can be found byte for byte",
         part(b"\xff\xfe\xc3\x28", b"raw") + close(), "ok",
         find=b"\xff\xfe\xc3\x28", data=b"raw")
    case("filename_star_ignored", "filename*= is not filename",
         b"--XbOuNdArY\r\nContent-Disposition: form-data; name=\"image\"; "
         b"filename*=UTF-8''%E2%82%AC.jpg\r\n\r\nstar\r\n" + close(), "ok",
         data=b"star", filename="(none)")
    case("header_no_colon", "a header line without a colon",
         b"--XbOuNdArY\r\nContent-Disposition form-data; name=image\r\n"
         b"\r\nzz\r\n" + close(), "bad_request")
    case("header_space_before_colon", "RFC 9110 forbids it",
         b"--XbOuNdArY\r\nContent-Disposition : form-data; name=image\r\n"
         b"\r\nzz\r\n" + close(), "bad_request")
    case("header_obs_fold", "a folded header line",
         b"--XbOuNdArY\r\nContent-Disposition: form-data;\r\n name=image"
         b"\r\n\r\nzz\r\n" + close(), "bad_request")
    case("header_bare_cr", "a lone CR inside a header line",
         b"--XbOuNdArY\r\nContent-Disposition: form-data;\r name=image"
         b"\r\n\r\nzz\r\n" + close(), "bad_request")
    case("header_bare_lf", "a lone LF inside the header block",
         b"--XbOuNdArY\r\nContent-Type: text/plain\nContent-Disposition: "
         b"form-data; name=image\r\n\r\nzz\r\n" + close(), "bad_request")
    case("header_nul", "a NUL byte inside a header value",
         b"--XbOuNdArY\r\nContent-Disposition: form-data; name=\"im\x00ge\""
         b"\r\n\r\nzz\r\n" + close(), "bad_request")

    case("crlf_data_ends_in_cr", "the CR before the delimiter's CRLF is data",
         part(b"image", b"abc\r") + close(), "ok", data=b"abc\r")
    case("crlf_data_ends_in_crlf", "a CRLF at the end of the data is data",
         part(b"image", b"abc\r\n") + close(), "ok", data=b"abc\r\n")
    case("crlf_data_starts_with_crlf", "data opening with CRLF",
         part(b"image", b"\r\n\r\nx") + close(), "ok", data=b"\r\n\r\nx")
    case("crlf_boundary_prefix_in_data", "CRLF-- and a prefix of the boundary "
         "inside the data are data",
         part(b"image", b"a\r\n--XbOuNd\r\nb\r\n--\r\n--XbOuNdAr") + close(),
         "ok", data=b"a\r\n--XbOuNd\r\nb\r\n--\r\n--XbOuNdAr")
    case("boundary_in_data_mid_line", "the boundary not after CRLF-- is data",
         part(b"image", b"x--XbOuNdArY\r\nXbOuNdArY--\n--XbOuNdArY") + close(),
         "ok", data=b"x--XbOuNdArY\r\nXbOuNdArY--\n--XbOuNdArY")
    case("lf_only", "a body using bare LF everywhere is refused",
         (img + close()).replace(b"\r\n", b"\n"), "bad_request")
    case("lf_delimiter_is_data", "LF--boundary inside a CRLF body is data",
         part(b"image", b"a\n--XbOuNdArY\nb") + close(), "ok",
         data=b"a\n--XbOuNdArY\nb")
    case("empty_part", "an image part of zero bytes",
         part(b"image", b"") + close(), "ok", data=b"", len=0)
    case("binary_nul", "every byte value, NULs included",
         part(b"image", bytes(range(256)) * 4, b"bin") + close(), "ok",
         data=bytes(range(256)) * 4, filename="bin")

    five = b"".join(part(b"f%d" % i, b"v") for i in range(4)) + img
    case("parts_at_limit", "exactly max_parts parts",
         five + close(), "ok", limits={"max_parts": 5}, data=JPEG, index=4)
    case("too_many_parts", "one part over the limit, after the image",
         img + five + close(), "too_many_parts", limits={"max_parts": 5})
    case("too_many_unnamed_parts", "unnamed parts count too",
         b"".join(part(None, b"u") for i in range(5)) + img + close(),
         "too_many_parts", limits={"max_parts": 5})
    hdr = b"X-Pad: " + b"p" * 100
    sized = part(b"image", b"h", headers=[hdr])
    # Header lines with their CRLFs, without the empty line.
    hlen = len(b'Content-Disposition: form-data; name="image"\r\n'
               + hdr + b"\r\n")
    case("header_at_limit", "a header block of exactly max_header_bytes",
         sized + close(), "ok", limits={"max_header_bytes": hlen},
         data=b"h")
    case("header_over_limit", "one byte over max_header_bytes",
         sized + close(), "header_too_large",
         limits={"max_header_bytes": hlen - 1})
    case("header_huge", "a 64 KiB header line against the default limit",
         part(b"image", b"h", headers=[b"X-Pad: " + b"p" * 65536])
         + close(), "header_too_large")


def write(root):
    for name, why, ct, body, result, data, limits, exp in CASES:
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "content_type"), "wb") as f:
            f.write(ct.encode() + b"\n")
        with open(os.path.join(d, "body"), "wb") as f:
            f.write(body)
        lines = [b"# " + why.encode(), b"result=" + result.encode()]
        for k, v in exp.items():
            v = v if isinstance(v, bytes) else str(v).encode()
            lines.append(k.encode() + b"=" + v)
        if data is not None and "len" not in exp:
            lines.append(b"len=%d" % len(data))
        with open(os.path.join(d, "expected"), "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
        dpath = os.path.join(d, "data")
        if data is not None:
            with open(dpath, "wb") as f:
                f.write(data)
        elif os.path.exists(dpath):
            os.remove(dpath)
        lpath = os.path.join(d, "limits")
        if limits:
            with open(lpath, "w") as f:
                for k, v in limits.items():
                    f.write("%s=%d\n" % (k, v))
        elif os.path.exists(lpath):
            os.remove(lpath)
    print("%d cases written to %s" % (len(CASES), root))


if __name__ == "__main__":
    build()
    write(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(__file__))
