"""Ingest throughput of the violation desk on PostgreSQL, owner lookup included.

    python bench/desk_ingest.py [--n 5000] [--batch 100] [--registry 100000] [--database-url URL]

Each event: 4 evidence JPEGs + a plate crop (distinct bytes, so every event's evidence file is
really written; flushed with one syncfs per batch), an Ed25519 signature verified against the camera's registered key, SHA-256 checks, the
owner lookup (60 % exact reads, 20 % one OCR confusion away, 20 % unknown plates) against a
registry of ``--registry`` vehicles, the violation/evidence/candidate/audit rows. Messages are
built before the clock starts (that is the plate reader's work, not the desk's).
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from desk_pg import Cluster  # noqa: E402

from stopline.services.violation_desk.cameras import add_camera  # noqa: E402
from stopline.services.violation_desk.desk import Desk  # noqa: E402
from stopline.services.violation_desk.ingest import ingest, ingest_batch  # noqa: E402
from stopline.services.violation_desk.registry import import_registry, registry_csv  # noqa: E402
from stopline.services.violation_desk.samples import CameraKeyPair, make_result  # noqa: E402

LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
CONFUSE = {"0": "O", "O": "0", "1": "I", "8": "B", "B": "8", "5": "S", "S": "5", "2": "Z", "Z": "2"}


def plate(rng: random.Random) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(2)) + f"{rng.randrange(1000):03d}" + \
        "".join(rng.choice(LETTERS) for _ in range(2))


def confuse(p: str, rng: random.Random) -> str:
    spots = [i for i, c in enumerate(p) if c in CONFUSE]
    if not spots:
        return p
    i = rng.choice(spots)
    return p[:i] + CONFUSE[p[i]] + p[i + 1:]


def _own_cpu() -> tuple[float, float]:
    """(user + system, system) CPU seconds of this process."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--single", type=int, default=500, help="events ingested one transaction each")
    ap.add_argument("--registry", type=int, default=100_000)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    rng = random.Random(7)
    cluster = None if args.database_url else Cluster()
    url = args.database_url or cluster.url
    work = Path(tempfile.mkdtemp(prefix="stopline-bench-desk-"))
    try:
        desk = Desk(url, work / "evidence", site="bench", pool_size=4)
        desk.upgrade()
        plates = list({plate(rng) for _ in range(args.registry)})
        rows = [dict(plate=p, region="eu", make="VW", model="Golf", colour="red", vehicle_class="car",
                     owner_name=f"Owner {i}", owner_address=f"{i} Bench Road") for i, p in enumerate(plates)]
        t = time.perf_counter()
        report = import_registry(desk, io.StringIO(registry_csv(rows)))
        t_reg = time.perf_counter() - t
        print(f"registry: {report.summary()} in {t_reg:.1f} s ({report.inserted / t_reg:,.0f} rows/s)")
        # what autovacuum does after a bulk load anyway, done now so that it does not run (and count
        # as PostgreSQL CPU) inside the timed loop
        with desk.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")

        key = CameraKeyPair.generate()
        add_camera(desk, "cam1", key.public_pem)

        def make(i: int):
            r = rng.random()
            p = rng.choice(plates) if r < 0.8 else plate(rng)
            if 0.6 <= r < 0.8:
                p = confuse(p, rng)
            return make_result(p, site="bench", key=key, confidence=0.95, crossed_at=1.7e9 + i)

        t = time.perf_counter()
        batch_items = [make(i) for i in range(args.n)]
        single_items = [make(args.n + i) for i in range(args.single)]
        print(f"built {args.n + args.single} signed messages in {time.perf_counter() - t:.1f} s (not timed)")

        lat = []
        cpu0, pg0 = _own_cpu(), cluster.cpu_seconds() if cluster else float("nan")
        t = time.perf_counter()
        created = 0
        for i in range(0, args.n, args.batch):
            t1 = time.perf_counter()
            out = ingest_batch(desk, batch_items[i:i + args.batch])
            lat.append(time.perf_counter() - t1)
            created += sum(o.created for o in out)
        t_batch = time.perf_counter() - t
        (cpu1, sys1), cpu_pg = _own_cpu(), (cluster.cpu_seconds() if cluster else float("nan")) - pg0
        cpu_desk, sys_desk = cpu1 - cpu0[0], sys1 - cpu0[1]
        assert created == args.n
        t = time.perf_counter()
        for item in single_items:
            assert ingest(desk, *item).created
        t_single = time.perf_counter() - t
        t = time.perf_counter()
        dup = sum(not ingest(desk, *item).created for item in single_items[:200])
        t_dup = time.perf_counter() - t
        with desk.session() as s:
            from sqlalchemy import func, select

            from stopline.services.violation_desk.models import Violation

            assigned = s.scalar(select(func.count()).select_from(Violation).where(Violation.vehicle_id.is_not(None)))
            total = s.scalar(select(func.count()).select_from(Violation))
        print(f"batched ({args.batch}/transaction): {args.n} events in {t_batch:.2f} s = {args.n / t_batch:,.0f} violations/s"
              f" (batch p50 {statistics.median(lat) * 1000:.0f} ms)")
        per = (cpu_desk + cpu_pg) / args.n
        print(f"  CPU per violation: desk process {1000 * cpu_desk / args.n:.2f} ms (kernel "
              f"{1000 * sys_desk / args.n:.2f}) + PostgreSQL "
              f"{1000 * cpu_pg / args.n:.2f} ms = {1000 * per:.2f} ms -> {1 / per:,.0f} violations/s per "
              f"CPU core with the machine to itself")
        print(f"single (1/transaction, as an idle consumer does): {args.single} events in {t_single:.2f} s = "
              f"{args.single / t_single:,.0f} violations/s")
        print(f"duplicates: 200 redeliveries in {t_dup:.2f} s = {200 / t_dup:,.0f}/s ({dup} recognised)")
        print(f"owners assigned automatically: {assigned}/{total}")
        desk.close()
    finally:
        if cluster:
            cluster.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
