#!/usr/bin/env python3
"""The side-by-side benchmark's device farm, on pymodbus (not our code).

One Modbus TCP server with UNITS unit ids, each holding REGS holding registers. Every
register changes every second: register a of unit u holds (a + 13 u + second) % 4000,
laid in as a request is answered, so each poll of a gateway sees new values and a
gateway that reports only changes reports them all.

    bench/farm.py --port P --units 20 --regs 500 [--writable W]

--writable W adds unit id W with 16 plain holding registers: they hold what a client
writes (bench/soak.sh raises and clears an alarm through it). Prints READY once listening; stops on SIGTERM / SIGINT.
"""

import argparse
import asyncio
import signal
import sys
import time

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def device(unit, regs):
    # value(a, s) = (a + 13 u + s) % 4000 is a slice of one precomputed cycle: laid in
    # at C speed, so the farm keeps up with 400 requests/s on one core.
    cycle = [k % 4000 for k in range(regs + 13 * unit + 4000 + 1)]

    async def action(_fc, start, _address, count, registers, _set):
        at = start + 13 * unit + int(time.time()) % 4000
        registers[:] = cycle[at:at + len(registers)]
        return None

    return SimDevice(
        id=unit,
        simdata=(
            [SimData(0, values=[False], datatype=DataType.BITS)],
            [SimData(0, values=[False], datatype=DataType.BITS)],
            [SimData(0, values=[0] * regs, datatype=DataType.REGISTERS)],
            [SimData(0, values=[0], datatype=DataType.REGISTERS)],
        ),
        action=action,
    )


def plain(unit):
    return SimDevice(
        id=unit,
        simdata=(
            [SimData(0, values=[False], datatype=DataType.BITS)],
            [SimData(0, values=[False], datatype=DataType.BITS)],
            [SimData(0, values=[0] * 16, datatype=DataType.REGISTERS)],
            [SimData(0, values=[0], datatype=DataType.REGISTERS)],
        ),
    )


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--units", type=int, default=20)
    ap.add_argument("--regs", type=int, default=500)
    ap.add_argument("--writable", type=int, default=0)
    args = ap.parse_args()
    devices = [device(u, args.regs) for u in range(1, args.units + 1)]
    if args.writable:
        devices.append(plain(args.writable))
    server = ModbusTcpServer(devices, address=("127.0.0.1", args.port))
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
