"""Registry bulk load and lookups on PostgreSQL: ``stopline desk import-registry`` of a
``--rows``-vehicle extract into an empty registry, the same file again (nothing changed), a
nightly refresh (1 % changed, 1 % new), and owner lookups before and after.

    python bench/desk_registry.py [--rows 1000000] [--lookups 2000] [--database-url URL]

The CSV is written before the clock starts. Imports run the real command in this process
(``stopline.cli.main``), so the figures include reading and checking every row, the COPY into
the staging table, the set-based upsert, the lookup keys and the statistics refresh, all in one
transaction. Lookups: 60 % plates in the registry, 20 % one OCR confusion away, 20 % unknown;
single lookups (a reviewer correcting a plate) and batches of 100 (what the ingestion does),
measured first against a 20,000-vehicle registry in another database, then against the full one.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from desk_ingest import confuse, plate  # noqa: E402
from desk_pg import Cluster  # noqa: E402

from stopline.cli import main as stopline  # noqa: E402
from stopline.services.violation_desk.desk import Desk  # noqa: E402
from stopline.services.violation_desk.lookup import LookupQuery, lookup, lookup_many  # noqa: E402
from stopline.services.violation_desk.registry import COLUMNS  # noqa: E402

SMALL = 20_000


def write_csv(path: Path, plates: list[str], changed: int = 0, extra: list[str] = ()) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i, p in enumerate(plates):
            address = f"{i} Bench Road" if i >= changed else f"{i} New Street"  # the first ``changed`` moved
            w.writerow((p, "eu", "VW", "Golf", "red", "car", f"Owner {i}", address))
        for j, p in enumerate(extra):
            w.writerow((p, "eu", "Kia", "Rio", "blue", "car", f"New owner {j}", f"{j} Fresh Lane"))


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed_import(url: str, path: Path, what: str, rows: int, cluster: Cluster | None) -> float:
    print(f"\n$ stopline desk import-registry {path.name}   # {what}", flush=True)
    load = os.getloadavg()[0]
    cpu, pg = _own_cpu(), cluster.cpu_seconds() if cluster else float("nan")
    t = time.perf_counter()
    code = stopline(["desk", "import-registry", str(path), "--database-url", url, "--evidence-dir",
                     str(path.parent / "evidence")])
    s = time.perf_counter() - t
    cpu, pg = _own_cpu() - cpu, (cluster.cpu_seconds() if cluster else float("nan")) - pg
    assert code == 0, f"import-registry exited {code}"
    print(f"=> {what}: {rows:,} rows in {s:.1f} s = {rows / s:,.0f} rows/s (load average "
          f"{load:.1f} -> {os.getloadavg()[0]:.1f}); CPU: command {cpu:.1f} s"
          + (f" + PostgreSQL {pg:.1f} s" if cluster else ""), flush=True)
    return s


def lookups(url: str, plates: list[str], n: int, rng: random.Random) -> str:
    queries = []
    for _ in range(n):
        r = rng.random()
        p = rng.choice(plates) if r < 0.8 else plate(rng)
        if 0.6 <= r < 0.8:
            p = confuse(p, rng)
        queries.append(p)
    desk = Desk(url, Path(tempfile.gettempdir()) / "stopline-bench-no-evidence", pool_size=1)  # never written
    single, batch = [], []
    found = 0
    with desk.session() as s:
        for p in queries[:100]:  # warm the connection and the caches
            lookup(s, p, "eu", 0.95, 0.9)
        for p in queries:
            t = time.perf_counter()
            found += bool(lookup(s, p, "eu", 0.95, 0.9).candidates)
            single.append(time.perf_counter() - t)
        for i in range(0, n, 100):
            t = time.perf_counter()
            lookup_many(s, [LookupQuery(p, "eu", 0.95) for p in queries[i:i + 100]], 0.9)
            batch.append(time.perf_counter() - t)
    desk.close()
    q = lambda xs, k: 1000 * statistics.quantiles(xs, n=100)[k - 1]  # noqa: E731
    return (f"single lookup p50 {q(single, 50):.2f} ms, p95 {q(single, 95):.2f} ms; batch of 100 p50 "
            f"{q(batch, 50):.1f} ms, p95 {q(batch, 95):.1f} ms; {found}/{n} with candidates")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--lookups", type=int, default=2000)
    ap.add_argument("--database-url", help="an empty database (default: a throwaway PostgreSQL cluster)")
    args = ap.parse_args()
    rng = random.Random(11)
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    cluster = None if args.database_url else Cluster()
    url = args.database_url or cluster.url
    work = Path(tempfile.mkdtemp(prefix="stopline-bench-registry-"))
    try:
        t = time.perf_counter()
        plates = list(dict.fromkeys(plate(rng) for _ in range(int(args.rows * 1.01))))[:args.rows]
        assert len(plates) == args.rows, "not enough distinct plates"
        known = set(plates)
        fresh = [p for p in dict.fromkeys(plate(rng) for _ in range(args.rows // 50)) if p not in known]
        full, refresh, small = work / "registry.csv", work / "refresh.csv", work / "small.csv"
        write_csv(full, plates)
        write_csv(refresh, plates, changed=args.rows // 100, extra=fresh[:args.rows // 100])
        write_csv(small, plates[:SMALL])
        print(f"wrote {full.stat().st_size / 1e6:.0f} MB of CSV in {time.perf_counter() - t:.1f} s (not timed)")

        small_url = url
        if cluster:
            cluster._run("createdb", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "small")
            small_url = url.rsplit("/", 1)[0] + "/small"
            timed_import(small_url, small, f"{SMALL:,} vehicles into an empty registry", SMALL, cluster)
            print(f"lookups, {SMALL:,} vehicles: {lookups(small_url, plates[:SMALL], args.lookups, rng)}")

        timed_import(url, full, f"{args.rows:,} vehicles into an empty registry", args.rows, cluster)
        timed_import(url, full, "the same file again (nothing changed)", args.rows, cluster)
        timed_import(url, refresh, "a refresh: 1 % changed, 1 % new", args.rows + args.rows // 100, cluster)
        print(f"lookups, {args.rows:,} vehicles: {lookups(url, plates, args.lookups, rng)}")
        print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        if cluster:
            cluster.stop()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
