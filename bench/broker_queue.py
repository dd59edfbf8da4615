"""Measure what a backlog costs the deployed central broker (deploy/mosquitto/central.conf):
memory per queued QoS 1 message, time to save and reload the database, time to drain.

    python bench/broker_queue.py --count 2000 --size 100000

Figures go in docs/deployment.md ("Queue limits, persistence and sizing") and bench/results/e2e.md. Needs Debian's mosquitto; uses a free loopback port.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "deploy"))

from slnet import broker  # noqa: E402
from slnet.mqtt_tool import Subscriber, publish_numbered  # noqa: E402


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--size", type=int, default=100_000, help="payload bytes (an evidence burst is ~0.3-1 MB)")
    args = p.parse_args()
    why = broker.mosquitto_missing()
    if why:
        print(why, file=sys.stderr)
        return 2
    acl = "user bench\ntopic readwrite stopline/#\n"
    with broker.Mosquitto("bench", broker.CENTRAL_CONF, users={"bench": "pw"}, acl=acl) as mq:
        topic, group = "stopline/bench/cam/violation/plates", "$share/plate-reader/stopline/bench/+/violation/plates"
        Subscriber(mq.host, mq.port, "bench", "pw", group, client_id="away").start().stop()
        base = rss_bytes(mq.proc.pid)
        t0 = time.monotonic()
        r = publish_numbered(mq.host, mq.port, "bench", "pw", topic, args.count, size=args.size)
        pub_s = time.monotonic() - t0
        time.sleep(1)
        grown = rss_bytes(mq.proc.pid) - base
        t0 = time.monotonic()
        mq.stop()
        save_s = time.monotonic() - t0
        db = (mq.dir / "data" / "mosquitto.db").stat().st_size
        t0 = time.monotonic()
        mq.start()
        load_s = time.monotonic() - t0
        sub = Subscriber(mq.host, mq.port, "bench", "pw", group, client_id="away").start()
        t0 = time.monotonic()
        ok = sub.wait_for(args.count, timeout=300)
        drain_s = time.monotonic() - t0
        sub.stop()
    print(f"mosquitto {'.'.join(map(str, broker.mosquitto_version()))}: {args.count} x {args.size} B "
          f"queued for an offline subscriber ({r['acked']} acknowledged, {args.count / pub_s:.0f} msg/s)")
    print(f"  memory: +{grown / 1e6:.1f} MB = {grown / args.count:.0f} B per message "
          f"({grown / args.count - args.size:+.0f} B over the payload)")
    print(f"  save on SIGTERM: {save_s:.2f} s for a {db / 1e6:.1f} MB database; reload on start: {load_s:.2f} s")
    print(f"  drained to the returning subscriber: {'all' if ok else 'NOT all'} in {drain_s:.2f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
