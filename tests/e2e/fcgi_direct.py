"""Builds one request body for test_privilege.sh, to be sent with cgi-fcgi
straight to the workers' socket (no nginx in front). Writes the body to
OUT and prints its Content-Type.

usage: fcgi_direct.py KIND OUT
KIND: face (a normal upload of images/ffhq_00064.jpg), big (the face plus
100 kB of padding), pixels (a 1200x1000 PNG, 1.2 Mpx), parts (five small
parts), header (a part header of 400 bytes).
"""
import io
import sys

from PIL import Image

kind, out = sys.argv[1:3]
boundary = "reface-direct-boundary"
face = open("images/ffhq_00064.jpg", "rb").read()


def part(name, data, extra=b""):
    return (b"--" + boundary.encode() + b"\r\n"
            b'Content-Disposition: form-data; name="' + name.encode() +
            b'"; filename="x"\r\n' + extra +
            b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n")


if kind == "face":
    parts = [part("image", face)]
elif kind == "big":
    parts = [part("pad", b"p" * 100000), part("image", face)]
elif kind == "pixels":
    buf = io.BytesIO()
    Image.new("RGB", (1200, 1000), (90, 120, 150)).save(buf, "PNG")
    parts = [part("image", buf.getvalue())]
elif kind == "parts":
    parts = [part("f%d" % i, b"x") for i in range(4)] + [part("image", face)]
elif kind == "header":
    parts = [part("image", face, b"X-Padding: " + b"h" * 400 + b"\r\n")]
else:
    sys.exit("unknown kind " + kind)
body = b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"
open(out, "wb").write(body)
print("multipart/form-data; boundary=" + boundary)
