"""``stopline deadletters list|replay --config site.yaml``: the payloads the services kept when
they dead-lettered them (see ``stopline.shared.deadletters``), and their replay."""

from __future__ import annotations

import argparse
import json
import sys

from stopline.shared.bus import Bus
from stopline.shared.config import SiteConfig, load_site
from stopline.shared.deadletters import as_json, select, stores


def add_commands(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("deadletters", help="list or replay the dead-lettered payloads kept on disk")
    dsub = d.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = dsub.add_parser("list", help="the kept payloads, oldest first")
    ls.add_argument("--config", required=True, help="site YAML file")
    ls.add_argument("--service", help="only this service's")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=_list)
    rp = dsub.add_parser("replay", help="republish kept payloads to their topic (QoS 1) and remove them")
    rp.add_argument("--config", required=True, help="site YAML file")
    rp.add_argument("--service", help="only this service's")
    rp.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the broker per message")
    what = rp.add_mutually_exclusive_group(required=True)
    what.add_argument("hashes", nargs="*", default=[], metavar="HASH", help="SHA-256 (or a unique prefix)")
    what.add_argument("--all-retryable", action="store_true",
                      help="every payload that ran out of RetryLater attempts (e.g. a database outage)")
    rp.set_defaults(func=_replay)


def _list(args: argparse.Namespace) -> int:
    site = load_site(args.config)
    for store in stores(site.state_dir, args.service):
        for entry in store.entries():
            print(json.dumps(as_json(entry)) if args.json else entry.row())
    return 0


def _replay(args: argparse.Namespace) -> int:
    site = load_site(args.config)
    if not args.hashes and not args.all_retryable:
        print("stopline deadletters replay: name HASH... or --all-retryable", file=sys.stderr)
        return 2
    chosen, missing = select(site.state_dir, args.hashes, args.all_retryable, args.service)
    for h in missing:
        print(f"{h}: no kept payload (or an ambiguous prefix)", file=sys.stderr)
    if not chosen:
        return 1 if missing else 0
    return max(replay(site, chosen, args.timeout), 1 if missing else 0)


def replay(site: SiteConfig, chosen: list, timeout: float) -> int:
    """Publish each chosen entry once (a payload kept by two services goes out once) and remove
    it; 0 when all went out, 1 otherwise."""
    bus = Bus(site, "deadletters-replay", persistent=False)
    bus.start()
    failed, sent = 0, set()
    try:
        if not bus.wait_connected(timeout):
            print(f"broker {site.mqtt.host}:{site.mqtt.port} not reachable in {timeout:.0f}s", file=sys.stderr)
            return 1
        for store, entry in chosen:
            publish = (lambda topic, payload: None) if entry.sha256 in sent else (
                lambda topic, payload: bus.publish_raw(topic, payload, timeout=timeout))
            try:
                store.replay(entry, publish)
            except Exception as e:
                failed += 1
                print(f"{entry.sha256}: not replayed: {type(e).__name__}: {e}", file=sys.stderr)
                continue
            sent.add(entry.sha256)
            print(f"{entry.sha256}: replayed to {entry.topic}")
    finally:
        bus.stop(drain_s=1)
    return 1 if failed else 0
