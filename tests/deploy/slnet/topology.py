"""The three-host layout on network namespaces, with the brokers as deployed.

    pole (edge mosquitto, 127.0.0.1:1883)  --TLS bridge-->  dc (central mosquitto, :1883 and TLS :8883)
    gw   (plate readers)                   --TLS--------->  dc

``three_hosts()`` yields a ``Layout`` with both brokers running and the bridge connected; the
full-pipeline tests start the services in it (``layout.net.popen("gw", [...stopline serve...])``)
with site files from ``layout.site_file(...)``.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import broker, netns
from .certs import write_ca_and_server

SITE = broker.DEPLOY / "sites" / "datacenter.yaml"  # site elm-st, camera north (= edge.conf)
BRIDGE_ID = "stopline-bridge-elm-st-north"  # remote_clientid in edge.conf


@dataclass
class Layout:
    net: netns.Hosts
    central: broker.Mosquitto
    edge: broker.Mosquitto
    passwords: dict[str, str]  # every user of both brokers ("pole" is the edge broker's)
    ca_file: Path

    def site_file(self, source: Path, dest: Path, host: str, user: str, **changes) -> Path:
        """A copy of a deployed site file for a service on ``host``: broker address, user,
        password (and TLS from the gateway) set for this layout; ``changes`` are top-level keys."""
        data = yaml.safe_load(source.read_text())
        for cam in data.get("cameras", []):  # camera files stay where they are
            if "file" in cam:
                cam["file"] = str((source.parent / cam["file"]).resolve())
        if host == "pole":
            mqtt = {"host": "127.0.0.1", "port": 1883}
        elif host == "dc":
            mqtt = {"host": self.net.addr["dc"], "port": 1883}
        else:
            mqtt = {"host": self.net.addr["dc"], "port": 8883, "tls": {"ca_file": str(self.ca_file)}}
        data["mqtt"] = {**data.get("mqtt", {}), **mqtt, "username": user, "password": self.passwords[user]}
        data.update(changes)
        dest.write_text(yaml.safe_dump(data, sort_keys=False))
        return dest


@contextlib.contextmanager
def three_hosts(site: Path = SITE) -> Iterator[Layout]:
    """Namespaces pole/gw/dc, central broker in dc (plain + TLS), edge broker in pole bridged
    to it over TLS with the camera's credentials. Everything is removed on exit."""
    users = broker.acl_users([site])
    passwords = {u: secrets.token_hex(8) for u in [*users, "pole"]}
    with netns.Hosts(["pole", "gw", "dc"]) as net:
        dc = net.addr["dc"]
        central = broker.Mosquitto("central", broker.CENTRAL_CONF, users={u: passwords[u] for u in users},
                                   acl=broker.make_acl([site]), listen=dc, port=1883, netns=net.ns["dc"])
        certs = central.dir / "certs"
        write_ca_and_server(certs, hosts=[dc])
        (central.dir / "conf.d" / "tls.conf").write_text(broker.render(broker.TLS_CONF.read_text(), {
            "listener": f"8883 {dc}", "cafile": str(certs / "ca.crt"),
            "certfile": str(certs / "server.crt"), "keyfile": str(certs / "server.key")}))
        broker.chown_for_broker(central.dir)
        edge = broker.Mosquitto("edge", broker.EDGE_CONF, users={"pole": passwords["pole"]},
                                listen="127.0.0.1", port=1883, netns=net.ns["pole"],
                                replace={"address": f"{dc}:8883", "remote_password": passwords["cam-north"],
                                         "bridge_cafile": str(certs / "ca.crt")})
        try:
            central.start()
            edge.start()
            central.wait_log(f"as {BRIDGE_ID}", timeout=30)
            yield Layout(net, central, edge, passwords, certs / "ca.crt")
        finally:
            edge.close()
            central.close()
