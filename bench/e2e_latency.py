"""End-to-end latency across the three hosts: stop-line crossing -> violation queued at the desk.

The deployed layout on network namespaces (tests/faults/threehost.py): pole = edge mosquitto
(bridged over TLS) + vehicle-detector + plate-finder, gateway = plate-reader(s) over TLS,
data center = central mosquitto + PostgreSQL + violation-desk. A synthetic scene plays in
real time; for every queued violation the desk's row has the times of each hop:

    crossed_at   the vehicle crossed the stop line (video time mapped to the wall clock)
    detected_at  the detector decided (after its post-crossing evidence frames)
    (plates)     the plate finder's message reached the central broker (a monitor subscriber)
    read_at      the plate reader published its read
    received_at  the desk's ingest transaction began (committed a few ms later)

    python bench/e2e_latency.py                      # seeds 11 and 12, 60 s each, 1 reader
    python bench/e2e_latency.py --seeds 11 --duration 30 --readers 2

Needs root (namespaces), mosquitto and the PostgreSQL server binaries. Scenes are rendered once
into --scenes (default /tmp/stopline-bench-scenes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "faults"))

import threehost  # noqa: E402

from stopline.services.violation_desk.db import normalise_url  # noqa: E402
from stopline.services.violation_desk.models import Violation  # noqa: E402
from stopline.shared.config import load_site  # noqa: E402


def hops(site_path: Path, plates_at: dict[str, float]) -> list[dict[str, float]]:
    """Per violation, the seconds each hop took; ``plates_at``: when the plate finder's message
    for an event reached the central broker (from a monitor subscriber in the gateway)."""
    engine = create_engine(normalise_url(load_site(site_path).database.url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Violation.event_id, Violation.crossed_at, Violation.detected_at,
                                       Violation.read_at, Violation.received_at))
            out = []
            for e, c, d, r, q in rows:
                p = plates_at.get(e, float("nan"))
                out.append({"decide": d - c, "to_central": p - d, "reader": r - p, "to_desk": q - r,
                            "total": q - c})
            return out
    finally:
        engine.dispose()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 12])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--readers", type=int, default=1)
    ap.add_argument("--scenes", type=Path, default=Path("/tmp/stopline-bench-scenes"))
    ap.add_argument("--target-p95", type=float, default=2.0)
    args = ap.parse_args()
    why = threehost.unavailable()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    samples: list[dict[str, float]] = []
    for seed in args.seeds:
        scene = threehost.render_scene(args.scenes / f"seed{seed}-{args.duration:g}s", seed, args.duration)
        with tempfile.TemporaryDirectory(prefix="stopline-bench-e2e-") as tmp:
            with threehost.pipeline(Path(tmp) / "run", scene, realtime=True) as pipe:
                watcher = pipe.watch("+/violation/plates")
                pipe.start_all(readers=args.readers)
                sent = pipe.run_to_completion(timeout=args.duration * 4 + 120)
                plates_at: dict[str, float] = {}
                for m in watcher.of("/plates"):
                    plates_at.setdefault(m["event_id"], m["t"])
                watcher.close()
                got = hops(pipe.sites["local"], plates_at)
                dropped = pipe.health("vehicle-detector").get("dropped_frames")
        print(json.dumps({"seed": seed, "sent": sent, "queued": len(got), "dropped_frames": dropped,
                          "total_s": [round(h["total"], 2) for h in got]}), flush=True)
        samples += got
    total = [h["total"] for h in samples]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{len(samples)} violations (load average at the end: {load}), {len(args.seeds)} scenes of {args.duration:g} s, "
          f"{args.readers} reader(s)")
    print("| hop | p50 s | p95 s | max s |")
    print("| --- | ---: | ---: | ---: |")
    for key, label in [("decide", "crossing -> detector decided (post-crossing evidence frames)"),
                       ("to_central", "decided -> plates at the central broker (outbox, edge broker, finder, bridge)"),
                       ("reader", "-> plate read published (reader: OCR of up to 3 images)"),
                       ("to_desk", "-> desk ingest"), ("total", "**crossing -> queued**")]:
        vals = [h[key] for h in samples if h[key] == h[key]]  # NaN: the monitor missed it
        print(f"| {label} | {pct(vals, 50):.2f} | {pct(vals, 95):.2f} | {max(vals):.2f} |")
    p95 = pct(total, 95)
    print(f"\np95 crossing -> queued: {p95:.2f} s (target <= {args.target_p95} s): "
          f"{'met' if p95 <= args.target_p95 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
