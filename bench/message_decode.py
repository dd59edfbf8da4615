"""What the header limits cost: decoding a large evidence message, and the pre-scan alone.

    python bench/message_decode.py [--mb 2] [--repeat 200]

Builds a violation candidate with four evidence JPEGs padded to about ``--mb`` MB in all (a
large evidence burst), then times ``decode`` (header pre-scan, JSON, pydantic validation,
SHA-256 of every attachment) and ``check_header`` alone on its header; also a header at the
size limit (``header_limits.max_bytes``) made of many small values, the pre-scan's worst case.
Prints medians in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.samples import candidate  # noqa: E402

from stopline.shared.config import HeaderLimits  # noqa: E402
from stopline.shared.header_scan import check_header  # noqa: E402
from stopline.shared.messages import decode, encode, sha256_hex  # noqa: E402


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=2.0)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    msg, blobs = candidate(frames=4)
    each = int(args.mb * 1e6 / len(blobs))
    blobs = {k: v + b"\0" * max(0, each - len(v)) for k, v in blobs.items()}
    for ev in msg.candidate.evidence:
        ev.sha256 = sha256_hex(blobs[ev.name])
    payload = encode(msg, blobs)
    hlen = struct.unpack(">I", payload[4:8])[0]
    header = payload[8 : 8 + hlen]
    limits = HeaderLimits()
    worst = json.dumps({"x": [0] * ((limits.max_items - 8))}).encode()
    worst = worst[:-2] + b" " * (limits.max_bytes - len(worst)) + b"]}"
    result = {
        "payload_bytes": len(payload), "header_bytes": hlen,
        "decode_ms": round(median_ms(lambda: decode(payload), args.repeat), 3),
        "prescan_ms": round(median_ms(lambda: check_header(header, limits), args.repeat), 4),
        "worst_header_bytes": len(worst),
        "worst_prescan_ms": round(median_ms(lambda: check_header(worst, limits), max(5, args.repeat // 10)), 2),
        "worst_json_loads_ms": round(median_ms(lambda: json.loads(worst), max(5, args.repeat // 10)), 2),
    }
    result["prescan_share_of_decode"] = f"{100 * result['prescan_ms'] / result['decode_ms']:.2f} %"
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
