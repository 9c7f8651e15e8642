"""A small HTTP load client for the chaos, soak and overload tests: keeps
CONCURRENCY requests in flight against 127.0.0.1:PORT (one connection per
request, "Connection: close"), for DURATION seconds or until REQUESTS have
been sent, and classifies every answer:

  ok      the expected answer: 200 with a full prediction for a valid
          upload (--gender checks its gender too), or the exact status and
          JSON error of a hostile case;
  clean   not the expected answer, but a clean one: a status in --clean
          with a JSON body {"error": "..."};
  unclean anything else: a reset or close without an answer, a status or
          body we do not expect, a body that is not the JSON error;
  timeout no complete answer within --timeout seconds.

Mixes (--mix): "face" sends only the valid upload of --image; "soak" picks,
with a fixed seed, the valid upload half of the time and otherwise one of
the hostile corpus' cases (tests/e2e/hostile/, those without a flag) with
the answer expected.tsv gives it.

Prints one JSON object: counts, statuses, latency percentiles, the wall
clock time it started (started_at) and the ok answers completed in each
second since (ok_per_second), and for the first few non-ok answers what
came back. Test tool only: nothing Python
serves. No third-party module.

usage: loadgen.py --port P [--concurrency C] [--duration S | --requests N]
                  [--mix face|soak] [--clean 502,503] [--timeout T]
"""
import argparse
import asyncio
import json
import os
import random
import sys
import time

HOSTILE = "tests/e2e/hostile"
BOUNDARY = "LoadgenBoundary7c1d"


def face_request(image, path="/predict"):
    data = open(image, "rb").read()
    body = (b"--" + BOUNDARY.encode() + b"\r\n"
            b'Content-Disposition: form-data; name="image"; '
            b'filename="face.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + data + b"\r\n--" +
            BOUNDARY.encode() + b"--\r\n")
    head = ("POST %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            "Content-Type: multipart/form-data; boundary=%s\r\n"
            "Content-Length: %d\r\n\r\n" % (path, BOUNDARY, len(body)))
    return head.encode() + body


def hostile_cases():
    """(name, raw request, status, error) for each unflagged case."""
    cases = []
    for line in open(os.path.join(HOSTILE, "expected.tsv")):
        if line.startswith("#") or not line.strip():
            continue
        name, status, error, flags = line.rstrip("\n").split("\t")
        if flags != "-" or status == "none":
            continue
        raw = open(os.path.join(HOSTILE, "cases", name + ".http"), "rb").read()
        cases.append((name, raw, int(status), error))
    return cases


def dechunk(body):
    out = b""
    while body:
        line, _, rest = body.partition(b"\r\n")
        try:
            size = int(line.split(b";")[0] or b"0", 16)
        except ValueError:
            return None
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def parse(raw):
    """(status, body bytes) of a whole HTTP/1.1 response; status 0 if none."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return 0, b""
    first = head.split(b"\r\n", 1)[0].split()
    if len(first) < 2 or not first[1].isdigit():
        return 0, b""
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
        if body is None:
            return 0, b""
    return int(first[1]), body


def classify(status, body, want_status, want_error, gender, clean):
    try:
        j = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        j = None
    if status == want_status:
        if want_error == "-":
            if (isinstance(j, dict) and
                    {"age", "gender_name", "emotions"} <= set(j) and
                    (gender is None or j["gender_name"] == gender)):
                return "ok"
            # A corpus case whose picture holds no face (a tiny polyglot,
            # say) is a prediction too: README "No face found". The known
            # face (gender given) must be found.
            if (gender is None and isinstance(j, dict) and
                    j.get("face_detected") is False and j.get("faces") == []):
                return "ok"
        elif j == {"error": want_error}:
            return "ok"
    if (status in clean and isinstance(j, dict) and list(j) == ["error"]
            and isinstance(j["error"], str)):
        return "clean"
    return "unclean"


class Run:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.face = face_request(args.image, args.path)
        self.cases = hostile_cases() if args.mix == "soak" else []
        self.counts = {"sent": 0, "ok": 0, "clean": 0, "unclean": 0,
                       "timeout": 0}
        self.statuses = {}
        self.latencies = []
        self.samples = []
        self.timeline = []
        self.deadline = None

    def pick(self):
        if self.cases and self.rng.random() >= 0.5:
            return self.rng.choice(self.cases)
        return ("face", self.face, 200, "-")

    def more(self):
        a = self.args
        if a.requests and self.counts["sent"] >= a.requests:
            return False
        return not (a.duration and time.monotonic() >= self.deadline)

    async def one(self, name, raw, want_status, want_error):
        a = self.args
        t0 = time.monotonic()
        status, body, kind = 0, b"", "unclean"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", a.port), a.timeout)
            try:
                writer.write(raw)
                await asyncio.wait_for(writer.drain(), a.timeout)
                data = await asyncio.wait_for(reader.read(-1), a.timeout)
            finally:
                writer.close()
            status, body = parse(data)
            kind = classify(status, body, want_status, want_error,
                            a.gender if name == "face" else None,
                            a.clean_set)
        except asyncio.TimeoutError:
            kind = "timeout"
        except (ConnectionError, OSError) as e:
            body = repr(e).encode()
        done = time.monotonic()
        self.latencies.append(done - t0)
        self.counts[kind] += 1
        if kind == "ok":
            second = int(done - self.start)
            self.timeline += [0] * (second + 1 - len(self.timeline))
            self.timeline[second] += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if kind != "ok" and len(self.samples) < 20:
            self.samples.append({"case": name, "kind": kind,
                                 "status": status,
                                 "body": body[:160].decode("utf-8",
                                                           "replace"),
                                 "at": round(t0 - self.start, 3)})

    async def client(self):
        while self.more():
            self.counts["sent"] += 1
            await self.one(*self.pick())

    async def main(self):
        self.start = time.monotonic()
        self.started_at = time.time()
        self.deadline = self.start + (self.args.duration or 0)
        await asyncio.gather(*(self.client()
                               for _ in range(self.args.concurrency)))
        elapsed = time.monotonic() - self.start
        lat = sorted(self.latencies) or [0.0]

        def pct(p):
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 4)

        return dict(self.counts,
                    failed=self.counts["sent"] - self.counts["ok"],
                    statuses={str(k): v for k, v in
                              sorted(self.statuses.items())},
                    seconds=round(elapsed, 2),
                    per_second=round(self.counts["sent"] / elapsed, 1),
                    latency_p50=pct(0.5), latency_p99=pct(0.99),
                    latency_max=round(lat[-1], 4),
                    started_at=round(self.started_at, 3),
                    ok_per_second=self.timeline,
                    samples=self.samples)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--duration", type=float, default=0)
    p.add_argument("--requests", type=int, default=0)
    p.add_argument("--mix", choices=["face", "soak"], default="face")
    p.add_argument("--image", default="images/ffhq_00064.jpg")
    p.add_argument("--path", default="/predict",
                   help="path and query of the valid upload")
    p.add_argument("--gender", default="male")
    p.add_argument("--clean", default="")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args()
    if not args.duration and not args.requests:
        p.error("give --duration or --requests")
    args.clean_set = {int(s) for s in args.clean.split(",") if s}
    json.dump(asyncio.run(Run(args).main()), sys.stdout)
    print()


main()
