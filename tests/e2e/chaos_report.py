"""Reads the stack's log and a list of faults the chaos test caused (lines
"EPOCH_SECONDS PID", when each worker was signalled) and prints, as JSON,
for each fault: when the master reaped the worker and why (the signal and
the cause= of its log line), which worker replaced it and how long after
the fault the replacement had its model loaded ("respawn_s"; absent when
the replacement was itself hit before that), and the median and largest of
those. Test tool only.

usage: chaos_report.py STACK_LOG FAULTS_FILE
"""
import calendar
import json
import re
import sys
import time

log_path, faults_path = sys.argv[1:3]
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z (\w+)\[(\d+)\]")


def epoch(line):
    m = STAMP.match(line)
    if not m:
        return None
    t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return t + int(m.group(2)) / 1000.0


lines = [l.rstrip("\n") for l in open(log_path, errors="replace")]
faults = [l.split() for l in open(faults_path) if l.strip()]
out = []
for at, pid in faults:
    at = float(at)
    entry = {"pid": int(pid), "at": at, "reaped": False}
    reap = re.compile(r"master: worker pid=%s (killed by signal (\d+)|exited)"
                      % pid)
    for i, line in enumerate(lines):
        m = reap.search(line)
        if not m:
            continue
        entry.update(reaped=True, signal=int(m.group(2) or 0),
                     reap_s=round(epoch(line) - at, 3))
        cause = re.search(r"cause=(\w+)", line)
        entry["cause"] = cause.group(1) if cause else None
        for later in lines[i + 1:]:
            s = re.search(r"master: started worker slot=\d+ pid=(\d+)", later)
            if s:
                entry["replaced_by"] = int(s.group(1))
                break
        break
    new = entry.get("replaced_by")
    for line in lines:
        if new and re.match(r"^\S+ worker\[%d\] NOTICE model: loaded" % new,
                            line):
            entry["respawn_s"] = round(epoch(line) - at, 3)
            break
    out.append(entry)

times = sorted(e["respawn_s"] for e in out if "respawn_s" in e)
faulted = {e["pid"] for e in out}
print(json.dumps({
    "faults": len(out),
    "reaped": sum(e["reaped"] for e in out),
    "replaced": sum("replaced_by" in e for e in out),
    # A replacement may itself be hit before its model is loaded.
    "replacement_loaded_or_hit": sum("respawn_s" in e or
                                     e.get("replaced_by") in faulted
                                     for e in out),
    "respawned": len(times),
    "respawn_median_s": times[len(times) // 2] if times else None,
    "respawn_max_s": times[-1] if times else None,
    "each": out,
}))
