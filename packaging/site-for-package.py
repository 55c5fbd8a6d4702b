#!/usr/bin/env python3
"""The packaged gateway's /etc/hazgate/site.toml, made from the demo site.

    packaging/site-for-package.py firmware-config/demo-site.toml > site.toml

The same devices and points (they are what `hazgate simulate` serves, so a fresh install
can be tried against the simulator), with every file the daemon writes moved to
/var/lib/hazgate (the unit makes the rest of the system read-only), the tokens in
/etc/hazgate, a history kept, and the RS-485 channel on a real serial port.
"""
import sys

text = open(sys.argv[1], encoding="utf-8").read()
header = """# /etc/hazgate/site.toml — this gateway's site file (installed by the hazgate package;
# your edits are kept on upgrade). It starts as the demo site: the devices and points
# `hazgate simulate --config /etc/hazgate/site.toml` serves. Replace the channels,
# devices, hazard sources and points with this enterprise's, check the file with
# `hazgate check /etc/hazgate/site.toml`, commission each device with `hazgate poll`,
# then `systemctl reload hazgate`. Everything the daemon writes is under
# /var/lib/hazgate.

"""


def replace_once(s, old, new):
    if s.count(old) != 1:
        sys.exit(f"site-for-package: expected one {old!r} in the demo site")
    return s.replace(old, new)


text = replace_once(text, '\ngateway_id = "GW-01"\n',
                    '\ngateway_id = "GW-01"\nstate_path = "/var/lib/hazgate/state.json"\n'
                    'overrides_path = "/var/lib/hazgate/overrides.json"\n')
text = replace_once(text, "\n[acquisition]\n",
                    '\n[api]\nlisten = "127.0.0.1:8088"\ntokens_path = "/etc/hazgate/tokens.json"\n'
                    'audit_path = "/var/lib/hazgate/audit.jsonl"\n\n[acquisition]\n')
text = replace_once(text, 'path = "/tmp/hazgate/ttyA"', 'path = "/dev/ttyUSB0"')
text += """
# The gateway's own history (30 days, 1 GiB at most), for `hazgate tune` and
# `hazgate export`.
[history]
path = "/var/lib/hazgate/history"

# The uplink to the park's platform: uncomment and set the broker.
# [uplink]
# host = "mqtt.park.example"
# port = 8883
# tls = { ca_file = "/etc/hazgate/ca.pem", cert_file = "/etc/hazgate/gw.pem", key_file = "/etc/hazgate/gw.key" }
# spool_path = "/var/lib/hazgate/spool.redb"
# audit_path = "/var/lib/hazgate/audit.jsonl"
"""
sys.stdout.write(header + text)
