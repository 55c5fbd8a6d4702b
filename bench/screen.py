#!/usr/bin/env python3
"""The county screen at scale, driven by bench/screen.sh.

Publishes ENTERPRISES gateways' retained status and SOURCES risk levels each (raw MQTT
3.1.1 over a socket: no client library needed), opens /screen in headless Chromium
(chromedriver over WebDriver), waits for every tile, then CHANGES times turns a random
source to another colour and measures publish → the tile's new colour in the page (the
page notes the time itself, with a MutationObserver; one clock on one machine). Prints
p50 / p99 / max of that latency, the page's JS heap and the renderer's memory, as JSON.
"""
import argparse
import json
import sys
import random
import socket
import struct
import time
import urllib.request

COLOURS = ["blue", "yellow", "orange", "red"]


def remaining_length(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


class Mqtt:
    """Just enough MQTT 3.1.1 to publish retained QoS 0 messages."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        body = utf8("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) + utf8("bench-screen-publisher")
        self.s.sendall(bytes([0x10]) + remaining_length(len(body)) + body)
        assert self.s.recv(4)[:2] == b"\x20\x02", "no CONNACK"

    def publish(self, topic, payload):
        body = utf8(topic) + payload.encode()
        self.s.sendall(bytes([0x31]) + remaining_length(len(body)) + body)

    def ping(self):
        """Round trip: everything published before has reached the broker."""
        self.s.sendall(b"\xc0\x00")
        assert self.s.recv(2) == b"\xd0\x00", "no PINGRESP"


def head(park, ent, seq, kind):
    return {"seq": seq, "ts": now_iso(), "park": park, "enterprise": ent, "gateway": "GW-1", "type": kind}


def now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int(t * 1000 % 1000)


def risk(park, ent, source, colour, seq):
    m = head(park, ent, seq, "risk")
    m["risk"] = {"ts": m["ts"], "scope": "hazard_source", "id": source, "from": "blue", "to": colour,
                 "reasons": [] if colour == "blue" else [{"rule": "low alarm", "colour": colour, "alarms": [], "since": m["ts"]}],
                 "snapshot": True, "since": m["ts"], "name": f"{source} 储罐区"}
    return json.dumps(m)


def status(park, ent):
    m = head(park, ent, 0, "status")
    m.update({"state": "online", "enterprise_name": f"{ent} 化工有限公司", "version": "bench", "uptime_s": 1,
              "spool_events": 0, "spool_telemetry": 0, "spool_bytes": 0, "dropped_telemetry": 0})
    return json.dumps(m)


def wd(port, method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["value"]


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--mqtt", type=int, required=True)
    a.add_argument("--http", type=int, required=True)
    a.add_argument("--driver", type=int, required=True)
    a.add_argument("--profile", required=True)
    a.add_argument("--enterprises", type=int, default=500)
    a.add_argument("--sources", type=int, default=10)
    a.add_argument("--parks", type=int, default=10)
    a.add_argument("--changes", type=int, default=100)
    args = a.parse_args()
    rng = random.Random(7)
    mq = Mqtt(args.mqtt)
    colour = {}
    for e in range(args.enterprises):
        park, ent = f"P{e % args.parks}", f"E{e:04d}"
        mq.publish(f"hazgate/v1/{park}/{ent}/GW-1/status", status(park, ent))
        for s in range(args.sources):
            c = rng.choice(COLOURS)
            colour[(park, ent, f"HS-{s}")] = c
            mq.publish(f"hazgate/v1/{park}/{ent}/GW-1/risk/HS-{s}", risk(park, ent, f"HS-{s}", c, 1))
    mq.ping()
    log = lambda what: print(f"{time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)
    log("published")
    sid = wd(args.driver, "POST", "/session", {"capabilities": {"alwaysMatch": {
        "browserName": "chrome", "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1920,1080",
            "--enable-precise-memory-info", f"--user-data-dir={args.profile}"]}}}})["sessionId"]
    script = lambda js: wd(args.driver, "POST", f"/session/{sid}/execute/sync", {"script": js, "args": []})
    wd(args.driver, "POST", f"/session/{sid}/url", {"url": f"http://127.0.0.1:{args.http}/screen"})
    total = args.enterprises * args.sources
    start = time.time()
    count = "return document.querySelectorAll('.tile').length"
    while script(count) < total:
        if time.time() - start > 120:
            raise SystemExit(f"only {script(count)} of {total} tiles")
        time.sleep(0.5)
    first_picture_s = time.time() - start
    log(f"picture after {first_picture_s:.1f} s")
    time.sleep(2)

    latencies = []
    for i in range(args.changes):
        key = rng.choice(list(colour))
        new = rng.choice([c for c in COLOURS if c != colour[key]])
        park, ent, source = key
        script(f"""window.__seen = null;
            const want = '{new}';
            window.__obs && window.__obs.disconnect();
            window.__obs = new MutationObserver(() => {{
              const t = document.querySelector('.tile[data-enterprise="{ent}"][data-source="{source}"]');
              if (window.__seen === null && t && t.dataset.colour === want) window.__seen = Date.now();
            }});
            window.__obs.observe(document.getElementById('map'), {{subtree: true, childList: true, attributes: true}});
            return 0""")
        sent = time.time() * 1000
        mq.publish(f"hazgate/v1/{park}/{ent}/GW-1/risk/{source}", risk(park, ent, source, new, 2 + i))
        colour[key] = new
        while True:
            seen = script("return window.__seen")
            if seen is not None:
                latencies.append(seen - sent)
                break
            if time.time() * 1000 - sent > 30_000:
                now = script(f"""const t = document.querySelector('.tile[data-enterprise="{ent}"][data-source="{source}"]');
                    return t && t.dataset.colour""")
                try:
                    logs = wd(args.driver, "POST", f"/session/{sid}/se/log", {"type": "browser"})
                except Exception as e:  # noqa: BLE001 - diagnostics only
                    logs = str(e)
                updated = script("return [document.body.dataset.updated, document.getElementById('conn').textContent, Date.now()]")
                raise SystemExit(f"change {i} ({ent}/{source} → {new}) never shown: the tile is {now}; "
                                 f"last render {updated}; browser log {logs}")
            time.sleep(0.02)
        time.sleep(rng.uniform(0.2, 0.6))
    mq.ping()
    heap = script("return performance.memory ? performance.memory.usedJSHeapSize : null")
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, max(0, int(round(p * len(latencies) + 0.5)) - 1))]
    wd(args.driver, "DELETE", f"/session/{sid}")
    print(json.dumps({"enterprises": args.enterprises, "sources": total, "changes": len(latencies),
                      "first_picture_s": round(first_picture_s, 1),
                      "latency_ms": {"p50": round(q(0.5)), "p99": round(q(0.99)), "max": round(latencies[-1])},
                      "page_js_heap_mb": None if heap is None else round(heap / 2**20, 1)}))


if __name__ == "__main__":
    main()
