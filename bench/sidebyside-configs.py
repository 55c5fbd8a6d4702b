#!/usr/bin/env python3
"""Writes the two gateways' configurations for bench/sidebyside.sh, for the same farm.

  site.toml   hazgate: a channel per unit id, every register an analog point (raw × 0.1),
              the judge on (a high alarm per point, above what the farm serves: judged,
              never raised), [uplink] to the broker with publish_deadband_pct = 0, so
              every reading of every poll is published, as samples (--telemetry
              readings for the self-describing form).
  flows.json  Node-RED + node-red-contrib-modbus: a client per unit id, a read node per
              125-register block every second, each block's array published to the broker
              (one message per block), as a Node-RED user would wire it.

    bench/sidebyside-configs.py --units 20 --regs 500 --modbus-port P --mqtt-port Q --out DIR
        [--telemetry samples|readings]
"""
import argparse
import json
import os

ap = argparse.ArgumentParser()
ap.add_argument("--units", type=int, default=20)
ap.add_argument("--regs", type=int, default=500)
ap.add_argument("--modbus-port", type=int, required=True)
ap.add_argument("--mqtt-port", type=int, required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--telemetry", default="samples", choices=["samples", "readings"])
ap.add_argument("--points", default="toml", choices=["toml", "csv"],
                help="the points in the site file, or in a CSV point table beside it")
args = ap.parse_args()
BLOCK = 125


def site():
    out = ['[gateway]\npark_id = "BENCH"\nenterprise_id = "E-BENCH"\n'
           'enterprise_name = "Side by side"\ngateway_id = "GW-BENCH"\n']
    for u in range(1, args.units + 1):
        out.append(f'[[channels]]\nid = "c{u}"\nkind = "tcp"\nhost = "127.0.0.1"\n'
                   f'port = {args.modbus_port}\n'
                   f'  [[channels.devices]]\n  id = "U{u}"\n  unit_id = {u}\n'
                   f'  poll_interval_ms = 1000\n  timeout_ms = 500\n')
    out.append('[[hazard_sources]]\nid = "HS-BENCH"\nname = "Farm"\nkind = "process_unit"\n'
               'level = 2\n')
    if args.points == "csv":
        out.append('points_csv = "points.csv"\n')
    for u in range(1, args.units + 1 if args.points == "toml" else 1):
        for a in range(args.regs):
            out.append(f'  [[hazard_sources.points]]\n  id = "U{u}-{a}"\n  kind = "analog"\n'
                       f'  device = "U{u}"\n  table = "holding"\n  address = {a}\n'
                       f'  data_type = "u16"\n  scale = 0.1\n  unit = "kPa"\n'
                       f'  alarms = {{ h = 450.0 }}\n')
    out.append(f'[uplink]\nhost = "127.0.0.1"\nport = {args.mqtt_port}\n'
               f'spool_path = "{args.out}/spool.redb"\naudit_path = "{args.out}/audit.jsonl"\n'
               f'publish_deadband_pct = 0\ntelemetry = "{args.telemetry}"\n')
    return "\n".join(out)


def flows():
    nodes = [{"id": "tab", "type": "tab", "label": "farm"},
             {"id": "broker", "type": "mqtt-broker", "name": "bench", "broker": "127.0.0.1",
              "port": str(args.mqtt_port), "clientid": "node-red-bench", "usetls": False,
              "protocolVersion": "4", "keepalive": "60", "cleansession": True},
             {"id": "out", "type": "mqtt out", "z": "tab", "name": "", "topic": "",
              "qos": "1", "retain": "false", "broker": "broker", "x": 600, "y": 100, "wires": []}]
    for u in range(1, args.units + 1):
        client = f"client{u}"
        nodes.append({"id": client, "type": "modbus-client", "name": f"U{u}",
                      "clienttype": "tcp", "bufferCommands": True, "stateLogEnabled": False,
                      "queueLogEnabled": False, "failureLogEnabled": True,
                      "tcpHost": "127.0.0.1", "tcpPort": str(args.modbus_port),
                      "tcpType": "DEFAULT", "serialPort": "/dev/ttyUSB", "serialType": "RTU-BUFFERD",
                      "serialBaudrate": "9600", "serialDatabits": "8", "serialStopbits": "1",
                      "serialParity": "none", "serialConnectionDelay": "100",
                      "serialAsciiResponseStartDelimiter": "0x3A", "unit_id": str(u),
                      "commandDelay": "1", "clientTimeout": "1000", "reconnectOnTimeout": True,
                      "reconnectTimeout": "2000", "parallelUnitIdsAllowed": True,
                      "showErrors": False, "showWarnings": True, "showLogs": False})
        for b in range(0, args.regs, BLOCK):
            nodes.append({"id": f"read{u}-{b}", "type": "modbus-read", "z": "tab",
                          "name": "", "topic": f"farm/U{u}/{b}", "showStatusActivities": False,
                          "logIOActivities": False, "showErrors": False, "showWarnings": True,
                          "unitid": str(u), "dataType": "HoldingRegister", "adr": str(b),
                          "quantity": str(min(BLOCK, args.regs - b)), "rate": "1",
                          "rateUnit": "s", "delayOnStart": False, "startDelayTime": "",
                          "server": client, "useIOFile": False, "ioFile": "",
                          "useIOForPayload": False, "emptyMsgOnFail": False,
                          "x": 200, "y": 100, "wires": [["out"], []]})
    return json.dumps(nodes, indent=1)


def points_csv():
    rows = ["id,kind,device,table,address,data_type,scale,unit,h"]
    for u in range(1, args.units + 1):
        for a in range(args.regs):
            rows.append(f"U{u}-{a},analog,U{u},holding,{a},u16,0.1,kPa,450.0")
    return "\n".join(rows) + "\n"


os.makedirs(args.out, exist_ok=True)
if args.points == "csv":
    with open(os.path.join(args.out, "points.csv"), "w") as f:
        f.write(points_csv())
with open(os.path.join(args.out, "site.toml"), "w") as f:
    f.write(site())
with open(os.path.join(args.out, "flows.json"), "w") as f:
    f.write(flows())
