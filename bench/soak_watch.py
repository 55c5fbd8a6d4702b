#!/usr/bin/env python3
"""The soak's subscriber: reads `mosquitto_sub -F '%U %t %p'` lines on stdin.

    mosquitto_sub ... -F '%U %t %p' | bench/soak_watch.py OUT

Writes OUT/minutes.jsonl (per minute: messages, values, telemetry stream_seq gaps and
resends) and OUT/alarms.txt (arrival time and action of each ALM-1 alarm message).
A gap is a stream_seq skipped for good: a replay after a broker restart resends (counted
apart), it must never skip.
"""
import json
import os
import re
import sys

SEQ = re.compile(rb'"stream_seq":(\d+)')
out = sys.argv[1]
minutes = open(os.path.join(out, "minutes.jsonl"), "a")
alarms = open(os.path.join(out, "alarms.txt"), "a")
minute, row, last_seq = None, None, None


def flush():
    if row is not None:
        minutes.write(json.dumps(row) + "\n")
        minutes.flush()


for line in sys.stdin.buffer:
    t, _, rest = line.rstrip(b"\n").partition(b" ")
    topic, _, payload = rest.partition(b" ")
    t = float(t)
    m = int(t // 60) * 60
    if m != minute:
        flush()
        minute, row = m, {"t": m, "messages": 0, "values": 0, "gaps": 0, "resends": 0}
    row["messages"] += 1
    if topic.endswith(b"/telemetry"):
        found = SEQ.search(payload)
        if found:
            seq = int(found.group(1))
            if last_seq is not None and seq > last_seq + 1:
                row["gaps"] += seq - last_seq - 1
            if last_seq is not None and seq <= last_seq:
                row["resends"] += 1
            last_seq = seq if last_seq is None else max(seq, last_seq)
        if b'"type":"samples"' in payload:
            row["values"] += sum(len(s["values"]) for s in json.loads(payload)["scans"])
    elif topic.endswith(b"/alarm"):
        a = json.loads(payload).get("alarm", {})
        if a.get("point") == "ALM-1" and a.get("action") in ("raised", "cleared"):
            alarms.write(f"{t} {a['action']}\n")
            alarms.flush()
flush()
