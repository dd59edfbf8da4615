"""``stopline serve SERVICE --config site.yaml`` and ``stopline health``."""

from __future__ import annotations

import argparse
import importlib
import logging
import os

from stopline.shared.config import load_site
from stopline.shared.health import check
from stopline.shared.service import stop_on_signals

SERVICES = {
    "vehicle-detector": "stopline.services.vehicle_detector.service",
    "plate-finder": "stopline.services.plate_finder.service",
    "plate-reader": "stopline.services.plate_reader.service",
    "violation-desk": "stopline.services.violation_desk.service",
}


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run one service")
    p.add_argument("service", choices=sorted(SERVICES))
    p.add_argument("--config", required=True, help="site YAML file")
    p.add_argument("--instance", help="instance name (default: $STOPLINE_INSTANCE or the host name)")
    p.set_defaults(func=_serve)
    h = sub.add_parser("health", help="exit 0 when a service instance is healthy")
    h.add_argument("--config", required=True)
    h.add_argument("--service", required=True, choices=sorted(SERVICES))
    h.add_argument("--instance")
    h.set_defaults(func=_health)


def _serve(args: argparse.Namespace) -> int:
    site = load_site(args.config)
    logging.getLogger().setLevel(site.log_level)
    if args.instance:
        os.environ["STOPLINE_INSTANCE"] = args.instance
    stop = stop_on_signals()
    module = importlib.import_module(SERVICES[args.service])
    return int(module.run(site, stop) or 0)


def _health(args: argparse.Namespace) -> int:
    site = load_site(args.config)
    ok, reason = check(site.state_dir, args.service, args.instance)
    print(reason)
    return 0 if ok else 1
