"""Queue page latency of the review app with a million violations in PostgreSQL.

    python bench/desk_queue.py [--rows 1000000] [--requests 300] [--database-url URL]

Seeds ``--rows`` violations (8 cameras and a 9th without any, ~29 days, 10 % queued, 10 % escalated, 60 % approved,
20 % rejected; a third with a registered owner) with one INSERT ... SELECT, ANALYZEs, starts the
review app (uvicorn, in its own process) and times full page loads over HTTP as a logged-in
reviewer: the default queue, camera/plate/date filters, newest-first, and keyset pages deep
into the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from desk_pg import Cluster  # noqa: E402

from stopline.services.violation_desk.desk import Desk  # noqa: E402
from stopline.services.violation_desk.users import add_user  # noqa: E402

T0 = 1_767_225_600.0  # 2026-01-01 UTC
STEP = 2.5

SEED = """
INSERT INTO cameras (id, name, created_at) SELECT 'cam' || g, 'bench camera ' || g, 0 FROM generate_series(0, 8) g;
INSERT INTO vehicles (plate_norm, plate, region, make, model, colour, vehicle_class, owner_name, owner_address, updated_at)
  SELECT 'V' || lpad(g::text, 6, '0'), 'V ' || lpad(g::text, 6, '0'), 'eu', 'VW', 'Golf', 'red', 'car',
         'Owner ' || g, g || ' Bench Road', 0 FROM generate_series(1, 10000) g;
INSERT INTO violations (event_id, site, camera_id, track_id, vehicle_class, crossed_at, detected_at, received_at,
    frame_index, signal_phase, time_into_red_s, plate_read, plate_confidence, plate_region, plate_norm,
    plate_corrected, vehicle_id, match_kind, clone_flag, integrity, integrity_detail, status, message_json)
  SELECT md5(g::text), 'bench', 'cam' || ((g / 10) % 8), g, 'car', :t0 + g * :step, :t0 + g * :step + 0.5,
         :t0 + g * :step + 1.0, g, 'red', (g % 50) / 10.0, p, 0.9, 'eu', p, false,
         CASE WHEN g % 3 = 0 THEN 1 + g % 10000 END, CASE WHEN g % 3 = 0 THEN 'exact' ELSE 'none' END, false,
         'verified', '',
         CASE WHEN g % 10 < 6 THEN 'approved' WHEN g % 10 < 8 THEN 'rejected' WHEN g % 10 < 9 THEN 'queued'
              ELSE 'escalated' END, ''
  FROM (SELECT g, chr(65 + g % 26) || chr(65 + (g / 26) % 26) || lpad((g % 1000)::text, 3, '0')
                  || chr(65 + (g / 7) % 26) || chr(65 + (g / 11) % 26) AS p
        FROM generate_series(1, :rows) g) s;
"""

SERVER = """
import sys, uvicorn
from stopline.services.violation_desk.desk import Desk
from stopline.services.violation_desk.web.app import create_app
desk = Desk(sys.argv[1], sys.argv[2])
uvicorn.run(create_app(desk, "bench-secret"), host="127.0.0.1", port=int(sys.argv[3]), log_level="warning",
            access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    cluster = None if args.database_url else Cluster()
    url = args.database_url or cluster.url
    work = Path(tempfile.mkdtemp(prefix="stopline-bench-queue-"))
    server = None
    try:
        desk = Desk(url, work / "evidence")
        desk.upgrade()
        t = time.perf_counter()
        with desk.engine.begin() as conn:
            for stmt in SEED.strip().split(";\n"):
                conn.execute(text(stmt), {"t0": T0, "step": STEP, "rows": args.rows})
        with desk.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does after a bulk load
            n = conn.execute(text("SELECT count(*) FROM violations")).scalar()
        print(f"seeded {n:,} violations in {time.perf_counter() - t:.0f} s")
        add_user(desk, "bench", "bench password", "reviewer")
        desk.close()

        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, url, str(work / "evidence"), str(port)])
        base = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=base, timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                page = client.get("/login")
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = client.post("/login", data={"username": "bench", "password": "bench password", "csrf_token": csrf})
        assert r.status_code in (200, 303), r.status_code

        mid = dt.datetime.fromtimestamp(T0 + args.rows * STEP / 2, dt.timezone.utc).date().isoformat()
        kinds = {
            "queue (queued, oldest first)": "/queue",
            "all statuses, newest first": "/queue?status=all&order=newest",
            "camera filter": "/queue?status=queued&camera=cam3",
            "camera with nothing queued": "/queue?status=queued&camera=cam8",
            "plate prefix": "/queue?status=all&plate=KD",
            "one day": f"/queue?status=all&from={mid}&to={mid}",
            "approved, newest": "/queue?status=approved&order=newest",
        }
        for path in kinds.values():  # warm up (connection pool, templates, plans)
            client.get(path)
        times: dict[str, list[float]] = {k: [] for k in kinds}
        times["keyset page 2-20"] = []
        rows_seen = 0
        per_round = len(kinds) + 1
        for i in range(max(1, args.requests // per_round)):
            for kind, path in kinds.items():
                t = time.perf_counter()
                r = client.get(path)
                times[kind].append(time.perf_counter() - t)
                assert r.status_code == 200
                rows_seen += r.text.count("<tr data-href")
            # follow "next page" links from a different starting page each round
            path = "/queue?status=approved"
            for _ in range(1 + i % 19):
                link = re.search(r'<a href="([^"]+)" id="next-page">', client.get(path).text)
                path = link.group(1).replace("&amp;", "&")
            t = time.perf_counter()
            r = client.get(path)
            times["keyset page 2-20"].append(time.perf_counter() - t)
            assert r.status_code == 200 and r.text.count("<tr data-href") == 50
        every = [x for v in times.values() for x in v]
        print(f"{len(every)} timed page loads over HTTP ({rows_seen:,} rows rendered by the filter pages)")
        print(f"{'request':32s} {'n':>4s} {'p50 ms':>8s} {'p95 ms':>8s} {'max ms':>8s}")
        for kind, v in times.items():
            print(f"{kind:32s} {len(v):4d} {1000 * statistics.median(v):8.1f} {1000 * pct(v, 95):8.1f} "
                  f"{1000 * max(v):8.1f}")
        print(f"{'ALL':32s} {len(every):4d} {1000 * statistics.median(every):8.1f} {1000 * pct(every, 95):8.1f} "
              f"{1000 * max(every):8.1f}")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        if cluster:
            cluster.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
