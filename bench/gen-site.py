#!/usr/bin/env python3
"""Generates a load-test site: N points over D devices on C Modbus TCP channels.

Half the points of each device are CDAB floats in holding registers (gas detectors),
half 4–20 mA counts in input registers (transmitters) — the mix of a real site.
"""
import argparse

ap = argparse.ArgumentParser()
ap.add_argument("--points", type=int, default=10_000)
ap.add_argument("--devices", type=int, default=20)
ap.add_argument("--channels", type=int, default=4)
ap.add_argument("--base-port", type=int, default=25020)
ap.add_argument("--poll-ms", type=int, default=1000)
args = ap.parse_args()

per_dev = args.points // args.devices
out = ['[gateway]\npark_id = "BENCH"\nenterprise_id = "E-BENCH"\nenterprise_name = "Load test"\ngateway_id = "GW-BENCH"\n']
for c in range(args.channels):
    out.append(f'[[channels]]\nid = "tcp-{c}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {args.base_port + c}\n')
    for d in range(c, args.devices, args.channels):
        out.append(f'  [[channels.devices]]\n  id = "D{d}"\n  unit_id = {d + 1}\n  poll_interval_ms = {args.poll_ms}\n  timeout_ms = 500\n')
out.append('[[hazard_sources]]\nid = "HS-BENCH"\nname = "Load"\nkind = "process_unit"\nlevel = 2\n')
for d in range(args.devices):
    floats = per_dev // 2
    for i in range(floats):
        out.append(f'  [[hazard_sources.points]]\n  id = "F{d}-{i}"\n  kind = "combustible_gas"\n  device = "D{d}"\n  table = "holding"\n'
                   f'  address = {2 * i}\n  data_type = "f32"\n  word_order = "CDAB"\n  valid_range = [0.0, 100.0]\n')
    for i in range(per_dev - floats):
        out.append(f'  [[hazard_sources.points]]\n  id = "L{d}-{i}"\n  kind = "level"\n  device = "D{d}"\n  table = "input"\n'
                   f'  address = {i}\n  data_type = "u16"\n  raw_range = [4000.0, 20000.0]\n  eng_range = [0.0, 100.0]\n'
                   f'  loop_current = {{ fault_below_ma = 3.8, fault_above_ma = 20.5 }}\n  unit = "%"\n')
print("\n".join(out))
