#!/usr/bin/env python3
"""Write the central broker's ACL (mosquitto ``acl_file``) for one or more site files.

Users, one per role, each allowed only what its role needs (mosquitto denies everything else):

- ``cam-<camera>``  a camera (or the edge bridge of its pole): publishes only that camera's
  candidate/plates topics, the pole services' status and dead letters; reads that camera's topics.
- ``signal-<camera>`` (cameras with ``signal.mode: mqtt``): publishes that camera's signal phases.
- ``plate-finder``, ``plate-reader``, ``violation-desk``: their stage's input and output, for
  every camera of the site.
- ``monitor``: read-only, all of ``stopline/<site>/#`` and ``$SYS/#`` (health checks, dashboards).

Usage::

    python deploy/mosquitto/make_acl.py deploy/sites/datacenter.yaml > /etc/mosquitto/acl
    python deploy/mosquitto/make_acl.py --users deploy/sites/datacenter.yaml   # names for mosquitto_passwd

Several site files may share one broker: give them all. Camera user names must then be unique
across sites, e.g. ``--camera-user 'cam-{site}-{camera}'``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stopline.shared import topics
from stopline.shared.config import ConfigError, SiteConfig, load_site

# Camera ids that would collide with the site-level topics stopline/<site>/status/... and
# stopline/<site>/deadletter.
RESERVED_CAMERA_IDS = frozenset({"status", "deadletter"})

ROLE_USERS = ("plate-finder", "plate-reader", "violation-desk", "monitor")
POLE_SERVICES = ("vehicle-detector", "plate-finder")


@dataclass
class UserRules:
    user: str
    comment: str
    rules: list[tuple[str, str]] = field(default_factory=list)  # (read|write|readwrite, topic)

    def add(self, access: str, topic: str) -> None:
        if (access, topic) not in self.rules:
            self.rules.append((access, topic))


def signal_topic(site: SiteConfig, camera_id: str) -> str:
    cam = site.camera(camera_id)
    return cam.signal.mqtt_topic or topics.camera_topic(site.site, camera_id, topics.SIGNAL)


def build_rules(sites: Sequence[SiteConfig], camera_user: str = "cam-{camera}") -> list[UserRules]:
    users: dict[str, UserRules] = {}
    camera_of_user: dict[str, tuple[str, str]] = {}

    def user(name: str, comment: str) -> UserRules:
        return users.setdefault(name, UserRules(name, comment))

    for site in sites:
        s = site.site
        root = f"{topics.ROOT}/{s}"
        dead = topics.deadletter(s)

        finder = user("plate-finder", "plate finder run centrally (poles use their camera's user)")
        finder.add("read", topics.any_camera(s, topics.CANDIDATE))
        finder.add("write", topics.any_camera(s, topics.PLATES))
        finder.add("write", f"{root}/status/plate-finder/+")
        finder.add("write", dead)

        reader = user("plate-reader", "plate reader replicas ($share/plate-reader/...)")
        reader.add("read", topics.any_camera(s, topics.PLATES))
        reader.add("write", topics.any_camera(s, topics.READ))
        reader.add("write", f"{root}/status/plate-reader/+")
        reader.add("write", dead)

        desk = user("violation-desk", "violation desk: stores reads and evidence clips, announces review status")
        desk.add("read", topics.any_camera(s, topics.READ))
        desk.add("read", topics.any_camera(s, topics.CLIP))
        desk.add("write", topics.any_camera(s, topics.STATUS))
        desk.add("read", topics.all_service_status(s))
        desk.add("read", dead)
        desk.add("write", f"{root}/status/violation-desk/+")
        desk.add("write", dead)

        mon = user("monitor", "read-only: health checks and dashboards")
        mon.add("read", "$SYS/#")
        mon.add("read", f"{root}/#")

        for cam in site.cameras:
            if cam.id in RESERVED_CAMERA_IDS:
                raise ConfigError(f"site {s}: camera id {cam.id!r} is reserved (it collides with {root}/{cam.id}/...)")
            name = camera_user.format(site=s, camera=cam.id)
            if name in ROLE_USERS:
                raise ConfigError(f"site {s}: camera user {name!r} collides with a service role user")
            if camera_of_user.setdefault(name, (s, cam.id)) != (s, cam.id):
                raise ConfigError(f"camera user {name!r} would cover two cameras "
                                  f"({camera_of_user[name]} and {(s, cam.id)}); use --camera-user with {{site}}")
            c = user(name, f"camera {cam.id} of site {s} and its pole's edge bridge")
            c.add("write", topics.camera_topic(s, cam.id, topics.CANDIDATE))
            c.add("write", topics.camera_topic(s, cam.id, topics.PLATES))
            c.add("write", topics.camera_topic(s, cam.id, topics.CLIP))
            c.add("read", f"{root}/{cam.id}/#")
            for service in POLE_SERVICES:
                c.add("write", f"{root}/status/{service}/+")
            c.add("write", f"{root}/status/bridge/{cam.id}")
            c.add("write", dead)
            sig = signal_topic(site, cam.id)
            if not sig.startswith(f"{root}/{cam.id}/"):
                c.add("read", sig)
            if cam.signal.mode == "mqtt":
                ctl = user(f"signal-{name.removeprefix('cam-')}", f"signal controller of camera {cam.id}")
                ctl.add("write", sig)
    return list(users.values())


def acl_text(sites: Sequence[SiteConfig], camera_user: str = "cam-{camera}") -> str:
    names = ", ".join(s.site for s in sites)
    out = [
        f"# mosquitto acl_file for site(s) {names}.",
        "# Generated by deploy/mosquitto/make_acl.py from the site file(s); regenerate, don't edit.",
        "# Everything not granted here is denied (a denied publish is acknowledged and dropped).",
        "",
    ]
    for u in build_rules(sites, camera_user):
        out.append(f"# {u.comment}")
        out.append(f"user {u.user}")
        out.extend(f"topic {access} {topic}" for access, topic in u.rules)
        out.append("")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sites", nargs="+", type=Path, help="site YAML file(s) served by this broker")
    p.add_argument("--camera-user", default="cam-{camera}",
                   help="user name pattern of a camera ({site}, {camera}); default cam-{camera}")
    p.add_argument("--users", action="store_true", help="print the user names, one a line, instead")
    p.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = p.parse_args(argv)
    try:
        sites = [load_site(path) for path in args.sites]
        if args.users:
            text = "\n".join(u.user for u in build_rules(sites, args.camera_user)) + "\n"
        else:
            text = acl_text(sites, args.camera_user)
    except ConfigError as e:
        print(f"make_acl: {e}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
