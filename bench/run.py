#!/usr/bin/python3
"""`make bench`: one run, one table, and build/bench/bench.json.

1. Inputs (bench/make_inputs.py) and the heavy model (bench/make_heavy.py).
2. In process: build/bin/reface-stages, the server's pipeline per stage,
   on both request paths: "detect" (the default: the face detector, then
   the attribute model on the face crops) and "whole" (detect=false: the
   centred crop). The heavy model is measured on the whole-image path.
3. End to end: scripts/run.sh (nginx + reface-fcgi, one worker per core,
   one torch thread each) and the FastAPI peer (bench/peer/app.py under
   uvicorn, one worker per core), each loaded by wrk with bench/post.lua at
   every concurrency; then the memory of each worker from smaps_rollup.
4. The table, the targets of issue 6, the JSON.

Ports default to 23580 (ours) and 23581 (the peer), above every test port
(18080..18100 shifted by E2E_PORT_OFFSET up to 5000); BENCH_PORT moves both.
Options: --seconds per wrk run (default 5; a run at concurrency c lasts at
least 2.5 x c x its latency at c=1 / workers, so that every connection
finishes a few requests, up to --max-seconds, default 40), --conc list,
--quick (2 s runs, concurrency 1 and 2, no heavy model), --no-peer,
--no-heavy, --peer-typical (the peer with torch's defaults: no
optimize_for_inference, as many threads per worker as cores), --paths
(default detect,whole).
"""
import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "build", "bench")
INPUTS = os.path.join(OUT, "inputs")
PY = "/usr/bin/python3"
FILES = ["face_1024.png", "face_256.jpg", "face_200.jpg", "gray_48.png",
         "phone_12mp.jpg"]
HEAVY_FILES = ["face_256.jpg"]
SHIPPED = os.path.join(ROOT, "models", "reface.pt")
HEAVY = os.path.join(OUT, "heavy.pt")
# The request paths: what the URL asks for, and what reface-stages runs.
PATHS = {"detect": ("/predict", "1"), "whole": ("/predict?detect=false", "0")}


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def machine():
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as f:
        mem_kb = int(f.readline().split()[1])
    return {"cores": os.cpu_count(), "cpu": model,
            "memory_gb": round(mem_kb / 1048576, 1),
            "kernel": platform.release(),
            "loadavg_start": os.getloadavg()[0]}


def get(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status
    except Exception:  # not up yet: refused, 502, 503
        return None


def wait_up(url, proc, what, limit=120):
    t0 = time.time()
    while get(url) != 200:
        if proc.poll() is not None:
            sys.exit("bench: %s exited while starting (code %s)"
                     % (what, proc.returncode))
        if time.time() - t0 > limit:
            sys.exit("bench: %s not up after %d s" % (what, limit))
        time.sleep(0.2)
    return time.time() - t0


def children(pid):
    r = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                       text=True)
    return [int(p) for p in r.stdout.split()]


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def memory(pid):
    """RSS, PSS and USS (private clean + dirty) in MB."""
    v = {}
    with open("/proc/%d/smaps_rollup" % pid, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":"):
                v[parts[0][:-1]] = int(parts[1])
    return {"rss_mb": round(v.get("Rss", 0) / 1024, 1),
            "pss_mb": round(v.get("Pss", 0) / 1024, 1),
            "uss_mb": round((v.get("Private_Clean", 0) +
                             v.get("Private_Dirty", 0)) / 1024, 1)}


def cpu_ms(pid):
    """User + system CPU time a process has used, in ms."""
    with open("/proc/%d/stat" % pid, encoding="utf-8") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf(
        "SC_CLK_TCK")


def post_once(url, path):
    body_cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                "-F", "image=@" + path, url]
    return subprocess.run(body_cmd, capture_output=True, text=True).stdout


def wrk(url, path, conc, seconds):
    cmd = ["wrk", "-t1", "-c%d" % conc, "-d%ds" % seconds, "--timeout",
           "30s", "-s", os.path.join(HERE, "post.lua"), url, "--", path]
    r = subprocess.run(cmd, capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("BENCH "):
            d = json.loads(line[6:])
            d["rps"] = round(d["requests"] * 1e6 / d["duration_us"], 1)
            d["seconds"] = seconds
            if d["requests"] == 0:  # none finished: no latency to report
                d["p50_us"] = d["p90_us"] = d["p99_us"] = None
            d["errors"] = sum(d[k] for k in ("connect", "read", "write",
                                             "status", "timeout"))
            return d
    sys.exit("bench: wrk gave no result: %s %s" % (r.stdout, r.stderr))


class Server:
    """One server under test: start, find its workers, stop."""

    def __init__(self, kind, model, port, workers, typical=False):
        self.kind, self.model, self.port = kind, model, port
        self.typical = typical
        self.workers = workers
        self.log_path = os.path.join(OUT, "%s-%s.log" % (
            kind, os.path.basename(model)))
        self.proc = None
        self.startup_cpu = []

    def start(self):
        t0 = time.time()
        logf = open(self.log_path, "w")
        if self.kind == "reface":
            env = dict(os.environ, PORT=str(self.port),
                       REFACE_FLAGS="--model %s --workers %d --threads 1"
                       % (self.model, self.workers))
            self.proc = subprocess.Popen(
                [os.path.join(ROOT, "scripts", "run.sh")], cwd=ROOT, env=env,
                stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True)
            up = "/ready"
        else:
            env = dict(os.environ, PEER_MODEL=self.model, PEER_THREADS="1",
                       PEER_TUNED="0" if self.typical else "1")
            self.proc = subprocess.Popen(
                [PY, "-m", "uvicorn", "app:app", "--app-dir",
                 os.path.join(HERE, "peer"), "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", str(self.workers)],
                cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT,
                start_new_session=True)
            up = "/health"
        took = wait_up(self.base() + up, self.proc, self.kind)
        # Every worker loaded, so that the next server's start-up does not
        # overlap this one's and skew both.
        while self.kind == "reface" and len(self.startup_ms()) < self.workers:
            if time.time() - t0 > 120:
                sys.exit("bench: reface workers not all up after 120 s")
            time.sleep(0.2)
        # Idle since it got ready: its CPU time so far is its start-up's.
        self.startup_cpu = [cpu_ms(p) for p in self.worker_pids()]
        log("%s up in %.1f s (%s)" % (self.kind, took,
                                       os.path.basename(self.model)))

    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def worker_pids(self):
        if self.kind == "reface":
            masters = [p for p in children(self.proc.pid)
                       if "reface-fcgi" in cmdline(p)]
            return [c for m in masters for c in children(m)]
        return [c for c in children(self.proc.pid)
                if "spawn_main" in cmdline(c)]

    def startup_ms(self):
        """Fork-to-ready of each worker, from its model: loaded line."""
        if self.kind != "reface":
            return []
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return [float(m.group(1)) for m in
                    re.finditer(r"model: loaded .* ms=([0-9.]+)", f.read())]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def run_pair(servers, files, paths, concs, seconds, workers, cap):
    """Both servers up at once; for each input and concurrency, wrk against
    ours then straight away against the peer, so that a change in the
    machine's load between the two runs stays small."""
    res = {k: {"runs": {}, "memory": [], "startup_ms": []} for k in servers}
    for srv in servers.values():
        srv.start()
    try:
        for name, route in ((n, r) for r in paths for n in files):
            path = os.path.join(INPUTS, name)
            one = {}
            for kind, srv in servers.items():
                url = srv.base() + PATHS[route][0]
                status = [post_once(url, path) for _ in range(3)]
                if any(s != "200" for s in status):
                    sys.exit("bench: %s answered %s to %s; log: %s"
                             % (kind, status, name, srv.log_path))
            for c in concs:
                for kind, srv in servers.items():
                    # Long enough for every connection to finish a few
                    # requests: c x (latency at c=1) / workers per round.
                    secs = seconds
                    if kind in one:
                        need = 2.5 * c * one[kind] / workers
                        secs = int(min(cap, max(seconds, need + 0.999)))
                    d = wrk(srv.base() + PATHS[route][0], path, c, secs)
                    if c == 1 and d["requests"] > 0:
                        one[kind] = d["p50_us"] / 1e6
                    res[kind]["runs"]["%s %s c%d" % (route, name, c)] = d
                    log("%-6s %-10s %-6s %-15s c=%-3d %3d s %7.1f rps p50 "
                        "%7s ms p99 %7s ms errors %d" % (
                            kind, os.path.basename(srv.model), route, name,
                            c,
                            secs, d["rps"], ms(d["p50_us"]),
                            ms(d["p99_us"]), d["errors"]))
        for kind, srv in servers.items():
            res[kind]["memory"] = [memory(p) for p in srv.worker_pids()]
            res[kind]["startup_ms"] = srv.startup_ms()
            if kind == "reface":
                res[kind]["startup_cpu_ms"] = srv.startup_cpu
    finally:
        for srv in servers.values():
            srv.stop()
    return res


def stages(model, files, iters, route):
    cmd = [os.path.join(ROOT, "build", "bin", "reface-stages"), "--model",
           model, "--threads", "1", "--iters", str(iters), "--detect",
           PATHS[route][1]]
    cmd += [os.path.join(INPUTS, f) for f in files]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        sys.exit("bench: reface-stages failed: " + r.stderr)
    d = json.loads(r.stdout)
    d["files"] = {os.path.basename(k): v for k, v in d["files"].items()}
    return d


def ms(us):
    return "-" if us is None else "%.1f" % (us / 1e3)


def ratio(a, b):
    return "%.2f" % (a / b) if a and b else "-"


def print_report(res):
    m = res["machine"]
    print()
    print("Reface benchmark, %s" % res["date"])
    print("machine: %d cores, %s, %.1f GB RAM, Linux %s; load average %.2f "
          "at start, %.2f at end" % (m["cores"], m["cpu"], m["memory_gb"],
                                      m["kernel"], m["loadavg_start"],
                                      m["loadavg_end"]))
    print("reface: %d workers x 1 torch thread behind nginx; peer: FastAPI "
          "%s + uvicorn %s, %d workers, %s; wrk %d s per run or longer "
          "(see JSON)"
          % (res["workers"], res["versions"]["fastapi"],
             res["versions"]["uvicorn"], res["workers"],
             "1 thread each, optimize_for_inference" if res["peer"] == "tuned"
             else "torch's defaults (typical)", res["seconds"]))
    for key, title in (("shipped", "shipped model (face-api, %s)"),
                       ("heavy", "heavy model (ResNet+CBAM 9.41 M, random "
                                 "weights, %s)")):
        if key not in res:
            continue
        block = res[key]
        print()
        print(title % os.path.basename(block["model"]))
        for route, st in block["stages"].items():
            print("In process, path %s (%s), one thread, median ms:" % (
                route, PATHS[route][0]))
            print("%-15s %9s %5s %6s %6s %6s %6s %5s %6s %8s" % (
                "input", "decoded", "sniff", "decode", "prep", "detect",
                "infer", "reply", "total", "limit/s"))
            for name, s in st["files"].items():
                print("%-15s %9s %5s %6s %6s %6s %6s %5s %6s %8.1f" % (
                    name, "%dx%d" % (s["width"], s["height"]),
                    ms(s["sniff_us"]), ms(s["decode_us"]),
                    ms(s["preprocess_us"]), ms(s["detect_us"]),
                    ms(s["infer_us"]), ms(s["reply_us"]),
                    ms(s["total_us"]), s["limit_rps"]))
        print("(prep = the detector's input and every face crop: pad, resize, "
              "normalise; detect = the detector's forwards (two when the "
              "first look finds no face); infer = the attribute model; "
              "limit = cores / total)")
        print("End to end, requests/s, p50 and p99 ms, errors; ratio = "
              "ours/peer (rps; p50 peer/ours: >1 means ours is faster)")
        print("%-6s %-15s %4s | %7s %7s %7s %4s | %7s %7s %7s %4s | %6s "
              "%6s %6s" % ("path", "input", "conc", "rps", "p50", "p99",
                           "err", "py rps", "py p50", "py p99", "err",
                           "x rps", "x p50", "c2/lim"))
        for k, d in block["reface"]["runs"].items():
            route, rest = k.split(" ", 1)
            name, c = rest.rsplit(" c", 1)
            p = block.get("peer", {}).get("runs", {}).get(k)
            lim = block["stages"][route]["files"][name]["limit_rps"]
            row = "%-6s %-15s %4s | %7.1f %7s %7s %4d | " % (
                route, name, c, d["rps"], ms(d["p50_us"]), ms(d["p99_us"]),
                d["errors"])
            if p:
                row += "%7.1f %7s %7s %4d | %6s %6s " % (
                    p["rps"], ms(p["p50_us"]), ms(p["p99_us"]), p["errors"],
                    ratio(d["rps"], p["rps"]),
                    ratio(p["p50_us"], d["p50_us"]))
            else:
                row += "%7s %7s %7s %4s | %6s %6s " % ("-", "-", "-", "-",
                                                       "-", "-")
            row += "%6s" % ("%.0f%%" % (100 * d["rps"] / lim)
                            if c == "2" else "")
            print(row)
        mem = block["reface"]["memory"]
        if mem:
            print("Memory per worker (MB, first worker): reface RSS %.0f "
                  "PSS %.0f USS %.0f" % (mem[0]["rss_mb"], mem[0]["pss_mb"],
                                         mem[0]["uss_mb"]), end="")
            pm = block.get("peer", {}).get("memory")
            if pm:
                print("; peer RSS %.0f PSS %.0f USS %.0f" % (
                    pm[0]["rss_mb"], pm[0]["pss_mb"], pm[0]["uss_mb"]),
                    end="")
            print()
        su = block["reface"]["startup_ms"]
        if su:
            print("Worker start-up, fork to ready (ms): %s; CPU time "
                  "used by then (ms): %s" % (
                      ", ".join("%.0f" % v for v in su),
                      ", ".join("%.0f" % v for v in
                                block["reface"].get("startup_cpu_ms", []))))
    print()
    print("Targets of issue 6:")
    for t in res["targets"]:
        print("  [%s] %s: %s" % ("met" if t["met"] else "NOT met",
                                 t["target"], t["measured"]))


def targets(res):
    """Each target of issue 6 on each request path of the shipped model."""
    out = []
    sh = res["shipped"]
    for route, stage in sh["stages"].items():
        st = stage["files"]
        runs = {k.split(" ", 1)[1]: v for k, v in sh["reface"]["runs"].items()
                if k.startswith(route + " ")}
        tag = " [%s]" % route
        worst = None
        for name in st:
            d = runs.get("%s c2" % name)
            if d:
                share = d["rps"] / st[name]["limit_rps"]
                if worst is None or share < worst[1]:
                    worst = (name, share)
        if worst:
            out.append({"target": "c=2 reaches 90% of the in-process limit"
                                  + tag, "met": worst[1] >= 0.9,
                        "measured": "lowest %.0f%% (%s)" % (
                            100 * worst[1], worst[0])})
        if "peer" in sh:
            pr = {k.split(" ", 1)[1]: v
                  for k, v in sh["peer"]["runs"].items()
                  if k.startswith(route + " ")}
            tp = [(k, runs[k]["rps"] / pr[k]["rps"]) for k in runs
                  if k in pr and pr[k]["rps"] > 0]
            if tp:
                k, lo = min(tp, key=lambda kv: kv[1])
                out.append({"target": "3x the peer's throughput" + tag,
                            "met": lo >= 3.0,
                            "measured": "lowest %.2fx (%s), highest %.2fx"
                                        % (lo, k, max(v for _, v in tp))})
            worse = [k for k in runs if k in pr
                     and pr[k]["p99_us"] is not None
                     and (runs[k]["p99_us"] is None or
                          runs[k]["p99_us"] >= pr[k]["p99_us"])]
            out.append({"target": "better p99 than the peer at every "
                                  "concurrency" + tag, "met": not worse,
                        "measured": "worse or equal in: " + ", ".join(worse)
                        if worse else "better in all %d runs" % len(runs)})
        big = st.get("face_1024.png")
        if big:
            pre = big["decode_us"] + big["preprocess_us"]
            model = big["infer_us"] + big["detect_us"]
            out.append({"target": "1024 px PNG: decode + preprocessing "
                                  "below the models' time" + tag,
                        "met": pre < model,
                        "measured": "%s ms against %s ms" % (ms(pre),
                                                             ms(model))})
        d = runs.get("phone_12mp.jpg c1")
        if d and d["p50_us"] is not None:
            out.append({"target": "12 MP JPEG under 60 ms at c=1" + tag,
                        "met": d["p50_us"] < 60000,
                        "measured": "p50 %s ms, p99 %s ms" % (
                            ms(d["p50_us"]), ms(d["p99_us"]))})
    su = sh["reface"]["startup_ms"]
    if su:
        cpu = sh["reface"].get("startup_cpu_ms") or [0]
        out.append({"target": "worker start-up under 1 s",
                    "met": max(su) < 1000,
                    "measured": "slowest %.0f ms of %d (wall clock; CPU time "
                                "%.0f ms)" % (max(su), len(su), max(cpu))})
    return out


def main():
    ap = argparse.ArgumentParser(description="Reface benchmark")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conc", default="1,2,8,64")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--max-seconds", type=int, default=40)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--no-heavy", action="store_true")
    ap.add_argument("--paths", default="detect,whole",
                    help="request paths of the shipped model: detect "
                         "(the default request), whole (detect=false)")
    ap.add_argument("--peer-typical", action="store_true",
                    help="the peer without optimize_for_inference and with "
                         "torch's default threads")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.conc, args.no_heavy = 2, "1,2", True
        args.iters = 10
    concs = [int(c) for c in args.conc.split(",")]
    paths = [p for p in args.paths.split(",") if p]
    if not paths or any(p not in PATHS for p in paths):
        sys.exit("bench: --paths takes detect and/or whole")
    port = int(os.environ.get("BENCH_PORT", "23580"))
    workers = os.cpu_count()

    os.makedirs(OUT, exist_ok=True)
    subprocess.run([PY, os.path.join(HERE, "make_inputs.py"), INPUTS],
                   check=True, stdout=subprocess.DEVNULL)
    if not args.no_heavy and not os.path.exists(HEAVY):
        subprocess.run([PY, os.path.join(HERE, "make_heavy.py"), HEAVY],
                       check=True, stdout=subprocess.DEVNULL)

    import fastapi
    import uvicorn
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": machine(), "workers": workers,
           "seconds": args.seconds, "concurrency": concs,
           "peer": "typical" if args.peer_typical else "tuned",
           "versions": {"fastapi": fastapi.__version__,
                        "uvicorn": uvicorn.__version__}}
    plan = [("shipped", SHIPPED, FILES, paths)]
    if not args.no_heavy:
        plan.append(("heavy", HEAVY, HEAVY_FILES, ["whole"]))
    for key, model, files, routes in plan:
        block = {"model": model, "stages": {}}
        for route in routes:
            log("in-process stages, %s, path %s" % (
                os.path.basename(model), route))
            st = stages(model, files, args.iters if key == "shipped"
                        else max(5, args.iters // 3), route)
            for s in st["files"].values():
                s["limit_rps"] = round(workers * 1e6 / s["total_us"], 1)
            block["stages"][route] = st
        servers = {"reface": Server("reface", model, port, workers)}
        if not args.no_peer:
            servers["peer"] = Server("peer", model, port + 1, workers,
                                     args.peer_typical)
        block.update(run_pair(servers, files, routes, concs, args.seconds,
                              workers, args.max_seconds))
        res[key] = block
    res["machine"]["loadavg_end"] = os.getloadavg()[0]
    res["targets"] = targets(res)
    with open(os.path.join(OUT, "bench.json"), "w", encoding="utf-8") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    print_report(res)
    print("\nJSON: build/bench/bench.json")


if __name__ == "__main__":
    main()
