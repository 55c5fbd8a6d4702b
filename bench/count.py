#!/usr/bin/env python3
"""Counts the values that reach the broker, for bench/sidebyside.sh.

    mosquitto_sub -v ... | bench/count.py START WINDOW [POINTS]

Reads `mosquitto_sub -v` lines (topic, space, payload) on stdin, counts those that arrive
in [START, START + WINDOW] (Unix seconds), and at EOF or the window's end prints one JSON line: messages, values, payload bytes, non-good readings and
telemetry stream_seq gaps. A hazgate telemetry message is counted by its readings (one
`"quality":` per reading), a samples message by its values; a Node-RED message is a
JSON array of register values.
"""
import json
import re
import signal
import sys
import time

SEQ = re.compile(rb'"stream_seq":(\d+)')
START, WINDOW = float(sys.argv[1]), float(sys.argv[2])
POINTS = int(sys.argv[3]) if len(sys.argv) > 3 else 0
# Values per acquisition second (samples only): every poll of every point delivered
# means each second inside the window holds exactly POINTS values.
per_second = {}
stats = {"window": WINDOW, "messages": 0, "values": 0, "bytes": 0, "non_good": 0, "seq_gaps": 0, "resends": 0}
last_seq = None


def done(*_):
    inner = sorted(per_second)[2:-2]  # the window's edges cut seconds short
    stats["seconds"] = len(inner)
    stats["exact_seconds"] = sum(per_second[k] == POINTS for k in inner)
    print(json.dumps(stats), flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, done)
for line in sys.stdin.buffer:
    now = time.time()
    if now < START:
        continue
    if now > START + WINDOW:
        break
    topic, _, payload = line.rstrip(b"\n").partition(b" ")
    stats["messages"] += 1
    stats["bytes"] += len(payload)
    if payload.startswith(b"["):
        stats["values"] += payload.count(b",") + 1
        continue
    if not topic.endswith(b"/telemetry"):
        continue
    if b'"type":"samples"' in payload:
        scans = json.loads(payload)["scans"]
        for s in scans:
            n = len(s["values"])
            stats["values"] += n
            stats["non_good"] += len(s.get("faults", ()))
            second = s["ts"][:19]
            per_second[second] = per_second.get(second, 0) + n
    else:
        n = payload.count(b'"quality":')
        stats["values"] += n
        stats["non_good"] += n - payload.count(b'"quality":"good"')
    m = SEQ.search(payload)
    if m:
        seq = int(m.group(1))
        if last_seq is not None and seq > last_seq + 1:
            stats["seq_gaps"] += seq - last_seq - 1
        if last_seq is not None and seq <= last_seq:
            stats["resends"] += 1
        last_seq = max(seq, last_seq or 0)
done()
