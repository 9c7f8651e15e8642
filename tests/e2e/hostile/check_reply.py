"""Checks one reply of send_raw.py against a case of expected.tsv: the
status, and the JSON body ({"error": ERROR} exactly, or a prediction when
ERROR is "-", which may have found no face); status "none" means nginx must close without answering.
Exit 0 if it matches; otherwise prints what came instead.

usage: check_reply.py REPLY_JSON STATUS ERROR
"""
import json, sys
reply_path, want_status, want_error = sys.argv[1:4]
try:
    reply = json.load(open(reply_path))
except ValueError:
    print("sender failed: " + open(reply_path).read()[:200])
    sys.exit(1)
status, body = reply["status"], reply["body"]
if want_status == "none":
    sys.exit(0 if status == 0 else 1)
if status != int(want_status):
    print("status %d, body %r" % (status, body[:200]))
    sys.exit(1)
try:
    j = json.loads(body)
except ValueError:
    print("body is not JSON: %r" % body[:200])
    sys.exit(1)
if want_error == "-":
    # A prediction: with a face, its fields; without one (a tiny picture),
    # face_detected false and no faces (README "No face found").
    ok = status == 200 and isinstance(j.get("faces"), list) and (
        {"age", "gender_name", "emotions"} <= set(j) if j["faces"]
        else j.get("face_detected") is False)
else:
    ok = j == {"error": want_error}
if not ok:
    print("body %r" % body[:200])
sys.exit(0 if ok else 1)
