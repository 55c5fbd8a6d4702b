#!/usr/bin/env python3
"""A Modbus slave for hazgate's integration tests, built on pymodbus (not our code).

Serves the register map in a JSON file over Modbus TCP, RTU on a serial path (one end of
a socat pty pair), or RTU framing over TCP. Values are encoded here with Python's struct
module, independently of hazgate's own encoder, so a decode test really checks hazgate.

Map file:
  {"devices": [
     {"unit": 1,
      "holding": {"size": 64, "values": [{"addr": 0, "type": "f32", "order": "CDAB", "value": 1.5},
                                          {"addr": 9, "type": "raw", "value": [4660, 1]}]},
      "input":    {...same...},
      "coils":    {"size": 16, "set": [0, 3]},
      "discrete": {"size": 16, "set": [1]},
      "exception": 2,           # optional: answer every request with this exception
      "delay_ms": 300},         # optional: answer late (a slow device)
     {"unit": 9, "silent": true}, # optional: never answers (a dead slave)
     {"unit": 3, "ignore": [{"table": "holding", "addr": 100}]}
                                 # optional: never answers a request that covers one of
                                 # these addresses, answering every other (a cheap
                                 # detector's unmapped address: no exception 2, nothing)
  ]}

Fault injection on responses (--garble MODE --garble-unit N):
  crc       flip the last byte (RTU: bad CRC)
  truncate  drop the last 3 bytes
  txid      (TCP) change the transaction id

Every request is logged to --log as "unit fc addr count" (one line each), so tests can
count requests server-side. Prints READY on stdout once it is listening.

Values changed while running (--control FILE): when FILE appears or changes, its
entries are laid into the registers before the next request is answered:
  [{"unit": 1, "table": "holding", "addr": 0, "type": "f32", "order": "CDAB", "value": 120.0}]
"""

import os

import argparse
import asyncio
import json
import signal
import struct
import sys

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

FORMATS = {
    "u16": ">H", "i16": ">h", "u32": ">I", "i32": ">i", "f32": ">f",
    "u64": ">Q", "i64": ">q", "f64": ">d",
}


def encode(kind, order, value):
    """Registers for value, as a device using `order` would send them."""
    if not kind.startswith("f"):
        value = int(value)
    raw = struct.pack(FORMATS[kind], value)
    words = [raw[i:i + 2] for i in range(0, len(raw), 2)]
    if order in ("BADC", "DCBA"):
        words = [w[::-1] for w in words]
    if order in ("CDAB", "DCBA"):
        words = words[::-1]
    return [int.from_bytes(w, "big") for w in words]


def registers(table):
    regs = [0] * table.get("size", 0)
    for v in table.get("values", []):
        words = v["value"] if v["type"] == "raw" else encode(v["type"], v.get("order", "ABCD"), v["value"])
        for i, w in enumerate(words):
            regs[v["addr"] + i] = w
    return regs


def bits(table):
    b = [False] * table.get("size", 0)
    for i in table.get("set", []):
        b[i] = True
    return b


def block(values, kind):
    if not values:
        values = [False] if kind == DataType.BITS else [0]
    return [SimData(0, values=values, datatype=kind)]


class Control:
    """Register changes from a file the test writes, applied as requests arrive."""

    def __init__(self, path):
        self.path = path
        self.seen = None
        self.pending = {}

    def poll(self):
        if not self.path:
            return
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            return
        if stamp == self.seen:
            return
        self.seen = stamp
        with open(self.path, encoding="utf-8") as f:
            for e in json.load(f):
                words = e["value"] if e["type"] == "raw" else encode(e["type"], e.get("order", "ABCD"), e["value"])
                self.pending.setdefault((e["unit"], e["table"]), []).append((e["addr"], words))

    def apply(self, unit, function_code, start, regs):
        self.poll()
        table = {3: "holding", 6: "holding", 16: "holding", 4: "input"}.get(function_code)
        waiting = []
        for addr, words in self.pending.pop((unit, table), []):
            if 0 <= addr - start and addr + len(words) - start <= len(regs):
                regs[addr - start:addr - start + len(words)] = words
            else:
                waiting.append((addr, words))  # not in this request's registers yet
        if waiting:
            self.pending[(unit, table)] = waiting


def build_devices(spec, control):
    devices = []
    for d in spec["devices"]:
        unit = d["unit"]
        exception = d.get("exception")
        silent = d.get("silent", False)
        delay = d.get("delay_ms", 0) / 1000
        ignore = [(e["table"], e["addr"]) for e in d.get("ignore", [])]

        async def action(fc, start, address, count, regs, _set, unit=unit, exception=exception, silent=silent,
                         delay=delay, ignore=ignore):
            control.apply(unit, fc, start, regs)
            if delay:
                await asyncio.sleep(delay)
            table = {1: "coil", 2: "discrete_input", 3: "holding", 4: "input"}.get(fc)
            if silent or any(t == table and address <= a < address + count for t, a in ignore):
                # pymodbus answers an unknown unit with exception 4; a dead RS-485
                # slave says nothing. Never completing the request says nothing.
                await asyncio.Event().wait()
            return ExcCodes(exception) if exception else None

        devices.append(SimDevice(
            id=unit,
            simdata=(
                block(bits(d.get("coils", {})), DataType.BITS),
                block(bits(d.get("discrete", {})), DataType.BITS),
                block(registers(d.get("holding", {})), DataType.REGISTERS),
                block(registers(d.get("input", {})), DataType.REGISTERS),
            ),
            action=action,
        ))
    return devices


def request_logger(log):
    """Logs every request PDU as it arrives (counts in bits for coils, unlike the action hook)."""
    def trace(sending, pdu):
        if not sending:
            log.write(f"{pdu.dev_id} {pdu.function_code} {getattr(pdu, 'address', 0)} {getattr(pdu, 'count', 0)}\n")
            log.flush()
        return pdu
    return trace


def garbler(mode, unit, tcp):
    def trace(sending, data):
        if not sending or not data:
            return data
        target = data[6] if tcp and len(data) > 6 else data[0]
        if target != unit:
            return data
        if mode == "crc":
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        if mode == "truncate":
            return data[:-3]
        if mode == "txid" and tcp:
            return bytes([data[0] ^ 0x55]) + data[1:]
        return data
    return trace


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--map", required=True)
    ap.add_argument("--tcp", type=int, help="Modbus TCP port on 127.0.0.1")
    ap.add_argument("--rtu-over-tcp", type=int, help="RTU framing over TCP, port on 127.0.0.1")
    ap.add_argument("--rtu", help="serial device path")
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("--garble", choices=["crc", "truncate", "txid"])
    ap.add_argument("--garble-unit", type=int, default=0)
    ap.add_argument("--control", help="JSON file of register changes to apply while running")
    args = ap.parse_args()

    with open(args.map, encoding="utf-8") as f:
        spec = json.load(f)
    log = open(args.log, "a", encoding="utf-8")
    devices = build_devices(spec, Control(args.control))
    tcp = args.tcp is not None
    trace = garbler(args.garble, args.garble_unit, tcp) if args.garble else None
    pdu_log = request_logger(log)
    if args.tcp is not None:
        server = ModbusTcpServer(devices, address=("127.0.0.1", args.tcp),
                                 ignore_missing_devices=True, trace_packet=trace, trace_pdu=pdu_log)
    elif args.rtu_over_tcp is not None:
        server = ModbusTcpServer(devices, address=("127.0.0.1", args.rtu_over_tcp), framer=FramerType.RTU,
                                 ignore_missing_devices=True, trace_packet=trace, trace_pdu=pdu_log)
    elif args.rtu:
        server = ModbusSerialServer(devices, port=args.rtu, baudrate=9600, framer=FramerType.RTU,
                                    ignore_missing_devices=True, trace_packet=trace, trace_pdu=pdu_log)
    else:
        ap.error("one of --tcp, --rtu-over-tcp, --rtu is required")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.serve_forever(background=True)
    print("READY", flush=True)
    await stop.wait()
    await server.shutdown()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
