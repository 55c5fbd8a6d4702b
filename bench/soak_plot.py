#!/usr/bin/env python3
"""Summarises a soak (bench/soak.sh) and draws OUT/soak.svg, with no plotting library.

    bench/soak_plot.py OUT

Panels over time: RSS, open file descriptors, spool and history on disk, CPU, and the
alarm latency of each raise / clear, with the broker's outages (red bands), reloads
(grey lines) and the flapping device's outages (orange ticks) marked.
"""
import json
import os
import sys

out = sys.argv[1]
samples = [json.loads(l) for l in open(os.path.join(out, "samples.jsonl"))]
minutes = [json.loads(l) for l in open(os.path.join(out, "minutes.jsonl"))] if os.path.exists(os.path.join(out, "minutes.jsonl")) else []
events = [l.split(" ", 1) for l in open(os.path.join(out, "events.txt"))]
events = [(float(t), e.strip()) for t, e in events]
writes = [tuple(map(float, l.split())) for l in open(os.path.join(out, "writes.txt"))]
arrivals = [(float(t), a.strip()) for t, a in (l.split(" ", 1) for l in open(os.path.join(out, "alarms.txt")))] if os.path.exists(os.path.join(out, "alarms.txt")) else []

t0 = samples[0]["t"]
outages, down = [], None
for t, e in events:
    if e == "broker down":
        down = t
    elif e == "broker up" and down is not None:
        outages.append((down, t)); down = None

# Each write's first matching alarm message: raised for 1, cleared for 0.
lat, seen = [], set()
for t, action in arrivals:
    want = 1.0 if action == "raised" else 0.0
    before = [w for w in writes if w[0] <= t and w[1] == want]
    if before and before[-1][0] not in seen:
        seen.add(before[-1][0])
        w = before[-1][0]
        during = any(a - 2 <= w <= b + 5 for a, b in outages)
        lat.append((w, (t - w) * 1000, during))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))] if xs else float("nan")


hours = (samples[-1]["t"] - t0) / 3600
rss = [(s["t"], s["rss_kb"] / 1024) for s in samples]
settled = [r for r in rss if r[0] - t0 >= 600] or rss
n = len(settled)
mx = sum(t for t, _ in settled) / n; my = sum(v for _, v in settled) / n
slope = sum((t - mx) * (v - my) for t, v in settled) / max(sum((t - mx) ** 2 for t, _ in settled), 1e-9) * 3600
cpu = []
for a, b in zip(samples, samples[1:]):
    if b["t"] > a["t"]:
        cpu.append((b["t"], 100 * (b["cpu_ticks"] - a["cpu_ticks"]) / b["hz"] / (b["t"] - a["t"])))
summary = {
    "hours": round(hours, 2),
    "rss_mib_first_last_max": [round(rss[0][1], 1), round(rss[-1][1], 1), round(max(v for _, v in rss), 1)],
    "rss_slope_mib_per_h_after_10min": round(slope, 3),
    "fds_min_max": [min(s["fds"] for s in samples), max(s["fds"] for s in samples)],
    "threads_min_max": [min(s["threads"] for s in samples), max(s["threads"] for s in samples)],
    "spool_mib_max": round(max(s["spool_b"] for s in samples) / 2**20, 1),
    "history_mib_end": round(samples[-1]["history_b"] / 2**20, 1),
    "cpu_pct_median": round(pct([c for _, c in cpu], 0.5), 2),
    "values": sum(m["values"] for m in minutes),
    "seq_gaps": sum(m["gaps"] for m in minutes),
    "resends": sum(m["resends"] for m in minutes),
    "broker_restarts": len(outages),
    "reloads": sum(1 for _, e in events if e == "reload"),
    "flaps": sum(1 for _, e in events if e == "flap down"),
    "alarm_writes": len(writes), "alarm_messages_matched": len(lat),
    "alarm_latency_ms_p50_p99": [round(pct([l for _, l, _ in lat], 0.5)), round(pct([l for _, l, _ in lat], 0.99))],
    "alarm_latency_ms_p99_broker_up": round(pct([l for _, l, d in lat if not d], 0.99)),
}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
print(json.dumps(summary, indent=1))

W, PH, L, R, GAP = 900, 130, 70, 20, 36
panels = [
    ("RSS (MiB)", rss, "#1f77b4", "line"),
    ("open file descriptors", [(s["t"], s["fds"]) for s in samples], "#2ca02c", "line"),
    ("spool (MiB)", [(s["t"], s["spool_b"] / 2**20) for s in samples], "#9467bd", "line"),
    ("CPU (% of a core)", cpu, "#8c564b", "line"),
    ("alarm latency (ms)", [(w, l) for w, l, _ in lat], "#d62728", "dots"),
]
H = GAP + len(panels) * (PH + GAP) + 20
tmax = samples[-1]["t"]
X = lambda t: L + (t - t0) / max(tmax - t0, 1) * (W - L - R)
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{L}" y="18" font-size="13">hazgate soak: {hours:.1f} h, 10,101 points at 1 s; '
       f'{summary["broker_restarts"]} broker restarts, {summary["reloads"]} reloads, {summary["flaps"]} device flaps; '
       f'seq gaps {summary["seq_gaps"]}</text>']
for i, (title, pts, colour, kind) in enumerate(panels):
    top = GAP + i * (PH + GAP)
    ys = [v for _, v in pts] or [0]
    lo, hi = min(0, min(ys)), max(ys) * 1.1 or 1
    Y = lambda v: top + PH - (v - lo) / (hi - lo) * PH
    svg.append(f'<text x="{L}" y="{top - 6}" font-weight="bold">{title}</text>')
    svg.append(f'<rect x="{L}" y="{top}" width="{W - L - R}" height="{PH}" fill="none" stroke="#999"/>')
    for a, b in outages:
        svg.append(f'<rect x="{X(a):.1f}" y="{top}" width="{max(X(b) - X(a), 1.5):.1f}" height="{PH}" fill="#d62728" opacity="0.25"/>')
    for t, e in events:
        if e == "reload":
            svg.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{top}" y2="{top + PH}" stroke="#888" stroke-dasharray="2,2"/>')
        elif e == "flap down":
            svg.append(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{top + PH - 6}" y2="{top + PH}" stroke="#ff7f0e"/>')
    for v in (lo, (lo + hi) / 2, hi):
        svg.append(f'<text x="{L - 6}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.3g}</text>')
    if kind == "line" and pts:
        d = " ".join(f"{X(t):.1f},{Y(v):.1f}" for t, v in pts)
        svg.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="1.2"/>')
    else:
        svg.extend(f'<circle cx="{X(t):.1f}" cy="{Y(v):.1f}" r="1.8" fill="{colour}"/>' for t, v in pts)
bottom = GAP + len(panels) * (PH + GAP) - GAP + 14
for k in range(0, int((tmax - t0) // 3600) + 1):
    svg.append(f'<text x="{X(t0 + k * 3600):.1f}" y="{bottom}" text-anchor="middle">{k} h</text>')
svg.append("</svg>")
open(os.path.join(out, "soak.svg"), "w").write("\n".join(svg))
