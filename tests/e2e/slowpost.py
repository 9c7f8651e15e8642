"""Slow uploads for the overload test: CLIENTS connections each send the
request head of a valid /predict upload at once, then its body CHUNK bytes
every INTERVAL seconds (slowloris style). Writes the time the last head
was sent to the file READY (so the test knows the uploads are under way),
then prints one JSON object: for each client its status, whether the
answer was a full prediction, and when (epoch seconds) its body was
complete and its answer came. Test tool only.

usage: slowpost.py PORT CLIENTS CHUNK INTERVAL READY
"""
import asyncio
import json
import sys
import time

port, clients, chunk, interval, ready = (int(sys.argv[1]), int(sys.argv[2]),
                                         int(sys.argv[3]),
                                         float(sys.argv[4]), sys.argv[5])
boundary = "SlowBoundary42"
image = open("images/ffhq_00064.jpg", "rb").read()
body = (b"--" + boundary.encode() + b"\r\n"
        b'Content-Disposition: form-data; name="image"; filename="f.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + image + b"\r\n--" +
        boundary.encode() + b"--\r\n")
head = ("POST /predict HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        "Content-Type: multipart/form-data; boundary=%s\r\n"
        "Content-Length: %d\r\n\r\n" % (boundary, len(body))).encode()


async def slow(started):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    started.release()
    for off in range(0, len(body), chunk):
        writer.write(body[off:off + chunk])
        await writer.drain()
        await asyncio.sleep(interval)
    sent = time.time()
    data = await reader.read(-1)
    writer.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    payload = data.partition(b"\r\n\r\n")[2]
    try:
        j = json.loads(payload)
        full = {"age", "gender_name", "emotions"} <= set(j)
    except ValueError:
        full = False
    return {"status": status, "prediction": full,
            "body_sent_at": round(sent, 3), "answered_at": round(time.time(), 3)}


async def main():
    started = asyncio.Semaphore(0)
    tasks = [asyncio.ensure_future(slow(started)) for _ in range(clients)]
    for _ in range(clients):
        await started.acquire()
    with open(ready, "w") as f:
        f.write("%.3f\n" % time.time())
    print(json.dumps({"body_bytes": len(body),
                      "clients": await asyncio.gather(*tasks)}))


asyncio.run(main())
