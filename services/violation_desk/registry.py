"""``import-registry``: validated bulk upsert of vehicles and owners from CSV, with a report of
the rows it rejected (line number and reason). Columns (header required, any order, extra columns
refused): plate, region, make, model, colour, vehicle_class, owner_name, owner_address.

How (a state's extract is millions of rows, refreshed nightly or weekly): every row is checked in
Python and the good ones are loaded into a temporary staging table as the file is read -
PostgreSQL one ``COPY``, SQLite ``executemany`` - then the registry is brought up to date with a
few set-based statements in the same transaction: repeated plates are rejected, changed
registrations updated, new ones inserted and their symmetric-delete keys (``registry_keys``)
written (PostgreSQL: computed here and sent by ``COPY``; SQLite: computed by the database). The
whole import is one transaction: all of it or nothing.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import operator
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TextIO

from sqlalchemy import text
from sqlalchemy.orm import Session

from . import audit
from .desk import Desk
from .models import User
from .plates import MAX_PLATE, deletion_keys

COLUMNS = ("plate", "region", "make", "model", "colour", "vehicle_class", "owner_name", "owner_address")
REQUIRED = ("plate", "region", "owner_name")
_LIMITS = {"plate": 32, "region": 16, "make": 64, "model": 64, "colour": 32, "vehicle_class": 32,
           "owner_name": 200, "owner_address": 1000}
_REGION = re.compile(r"^[a-z0-9_-]{1,16}$")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
# the staging table's columns, in the order rows are written to it
STAGE = ("line", "plate_norm", "plate", "region", "make", "model", "colour", "vehicle_class", "owner_name",
         "owner_address")
_VALUES = ("plate", "make", "model", "colour", "vehicle_class", "owner_name", "owner_address")
FLUSH_ROWS = 20_000  # SQLite: rows per executemany
PROGRESS_EVERY = 100_000

Progress = Callable[[str], None]


class RegistryError(ValueError):
    """The file as a whole cannot be imported (unreadable, wrong header)."""


@dataclass
class ImportReport:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def summary(self) -> str:
        return (f"{self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, "
                f"{len(self.rejected)} rejected")


def _plate_norm(plate: str) -> str:
    """``plates.normalise_plate`` without its cut at 16 characters (a longer plate is refused here)."""
    if plate.isalnum() and plate.isascii():
        return plate.upper()  # the usual case, ~10x cheaper than the general one
    if not plate.isascii():
        plate = unicodedata.normalize("NFKD", plate).encode("ascii", "ignore").decode()
    return _NOT_ALNUM.sub("", plate.upper())


@functools.lru_cache(maxsize=4096)
def _region(region: str) -> str | None:
    """The region as stored (lower case), or None when it is not one (a registry has few)."""
    region = region.lower()
    return region if _REGION.match(region) else None


_LIMIT_LIST = [_LIMITS[c] for c in COLUMNS]


def _validate(values: list[str], order: list[int]) -> tuple[tuple | None, str | None]:
    """One CSV record (``order``: the file's position of each of COLUMNS) as a staging row
    without its line number, or the reason it is refused."""
    if len(values) != len(order):
        return None, "wrong number of fields"
    fields = [values[i].strip() for i in order]
    plate, region, make, model, colour, vclass, owner, address = fields
    if not plate:
        return None, "plate is empty"
    if not region:
        return None, "region is empty"
    if not owner:
        return None, "owner_name is empty"
    if any(map(operator.gt, map(len, fields), _LIMIT_LIST)):
        name, limit = next((c, n) for c, n, v in zip(COLUMNS, _LIMIT_LIST, fields) if len(v) > n)
        return None, f"{name} longer than {limit} characters"
    stored_region = _region(region)
    if stored_region is None:
        return None, "region: letters, digits, _ or - only"
    norm = _plate_norm(plate)
    if not 2 <= len(norm) <= MAX_PLATE:
        return None, f"plate {plate!r} has {len(norm)} letters/digits (2-{MAX_PLATE} needed)"
    return (norm, plate, stored_region, make, model, colour.lower(), vclass.lower(), owner, address), None


def import_registry(target: Desk | Session, source: str | Path | TextIO, *, actor: User | None = None,
                    progress: Progress | None = None) -> ImportReport:
    """Upsert every valid row (keyed by normalised plate + region) in one transaction;
    ``progress`` is told what is happening, a line at a time."""
    if isinstance(target, Desk):
        with target.session() as s, s.begin():
            return import_registry(s, source, actor=actor, progress=progress)
    if isinstance(source, (str, Path)):
        try:
            with open(source, encoding="utf-8-sig", newline="") as f:
                return _import(target, f, actor, str(source), progress)
        except (OSError, UnicodeDecodeError) as e:
            raise RegistryError(f"{source}: cannot read: {e}") from None
    return _import(target, source, actor, getattr(source, "name", "<stream>"), progress)


def _import(session: Session, f: TextIO, actor: User | None, label: str, progress: Progress | None) -> ImportReport:
    say = progress or (lambda _line: None)
    start = time.perf_counter()
    reader = csv.reader(f)
    try:
        header = [h.strip() for h in next(reader, [])]
    except (csv.Error, UnicodeDecodeError) as e:
        raise RegistryError(f"{label}: line 1: {e}") from None
    missing = [c for c in COLUMNS if c not in header]
    extra = [c for c in header if c not in COLUMNS]
    if missing or extra:
        raise RegistryError(f"{label}: header must be {','.join(COLUMNS)}"
                            + (f"; missing {', '.join(missing)}" if missing else "")
                            + (f"; unknown {', '.join(extra)}" if extra else ""))
    order = [header.index(c) for c in COLUMNS]
    report = ImportReport()
    read = 0
    with _Stage(session) as stage:
        try:
            for values in reader:
                line = reader.line_num
                read += 1
                row, reason = _validate(values, order)
                if row is None:
                    report.rejected.append((line, reason or "invalid"))
                else:
                    stage.add((line, *row))
                if read % PROGRESS_EVERY == 0:
                    say(f"{read:,} rows read, {len(report.rejected):,} rejected "
                        f"({read / (time.perf_counter() - start):,.0f} rows/s)")
        except (csv.Error, UnicodeDecodeError) as e:
            raise RegistryError(f"{label}: line {reader.line_num}: {e}") from None
    say(f"{read:,} rows read and staged, {len(report.rejected):,} rejected "
        f"({time.perf_counter() - start:.1f} s)")
    t = time.perf_counter()
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE registry_stage"))  # temporary tables get no statistics otherwise
        # the joins and groupings over the whole file hash in memory instead of spilling to disk
        session.execute(text("SET LOCAL work_mem = '256MB'"))
        # imports one at a time (new vehicles are those above the largest id); lookups go on reading
        session.execute(text("LOCK TABLE vehicles IN SHARE ROW EXCLUSIVE MODE"))
    repeats = _reject_repeats(session, report)
    say(f"{repeats:,} rows repeating an earlier plate and region ({time.perf_counter() - t:.1f} s)")
    _upsert(session, report, stage.staged - repeats, say)
    session.execute(text("DROP TABLE registry_stage"))
    report.rejected.sort()
    audit.record(session, actor, "registry.import", "registry", label[-64:], None, {
        "inserted": report.inserted, "updated": report.updated, "unchanged": report.unchanged,
        "rejected": len(report.rejected)})
    say(f"done in {time.perf_counter() - start:.1f} s: {report.summary()}")
    return report


class _Stage:
    """The temporary staging table, filled while the file is read: on PostgreSQL one ``COPY``
    for the whole file, a row at a time (the server stores rows while the next are read and
    checked here); on SQLite ``executemany`` per batch of rows."""

    def __init__(self, session: Session):
        self.conn = session.connection()
        self.postgres = self.conn.dialect.name == "postgresql"
        self.rows: list[tuple] = []
        self.staged = 0  # rows written to the table
        self._open = contextlib.ExitStack()
        text_type = 'TEXT COLLATE "C"' if self.postgres else "TEXT"  # byte order, as vehicles.plate_norm
        columns = ", ".join(f"{c} {'INTEGER' if c == 'line' else text_type} NOT NULL" for c in STAGE)
        self.conn.exec_driver_sql(f"CREATE TEMP TABLE registry_stage ({columns})"
                                  + (" ON COMMIT DROP" if self.postgres else ""))

    def __enter__(self) -> _Stage:
        if self.postgres:
            cursor = self._open.enter_context(self.conn.connection.dbapi_connection.cursor())
            # text format, written by psycopg's row formatter: less CPU on both sides than CSV
            self._copy = self._open.enter_context(cursor.copy(f"COPY registry_stage ({', '.join(STAGE)}) FROM STDIN"))
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            try:
                self.flush()
            except BaseException as e:
                self._open.__exit__(type(e), e, e.__traceback__)
                raise
        self._open.__exit__(kind, error, tb)  # ends the COPY (aborts it on an error), closes its cursor

    def add(self, row: tuple) -> None:
        if self.postgres:
            self._copy.write_row(row)
            self.staged += 1
            return
        self.rows.append(row)
        if len(self.rows) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.conn.exec_driver_sql(f"INSERT INTO registry_stage VALUES ({', '.join('?' * len(STAGE))})",
                                      self.rows)
            self.staged += len(self.rows)
            self.rows = []


def _reject_repeats(session: Session, report: ImportReport) -> int:
    """Reject every row whose plate and region an earlier line already has; returns how many."""
    repeats = session.execute(text(
        "SELECT s.line, f.first FROM registry_stage s JOIN (SELECT plate_norm, region, min(line) AS first "
        "FROM registry_stage GROUP BY plate_norm, region HAVING count(*) > 1) f "
        "ON s.plate_norm = f.plate_norm AND s.region = f.region WHERE s.line <> f.first")).all()
    if repeats:
        report.rejected.extend((line, f"same plate and region as line {first}") for line, first in repeats)
        # keep the first of each: rebuild the (temporary) table rather than delete by a long list
        session.execute(text("CREATE TEMP TABLE registry_first AS SELECT * FROM registry_stage WHERE line IN "
                             "(SELECT min(line) FROM registry_stage GROUP BY plate_norm, region)"))
        session.execute(text("DELETE FROM registry_stage"))
        session.execute(text("INSERT INTO registry_stage SELECT * FROM registry_first"))
        session.execute(text("DROP TABLE registry_first"))
    return len(repeats)


_CHANGED = " OR ".join(f"vehicles.{c} <> s.{c}" for c in _VALUES)
_UPDATE = text(f"UPDATE vehicles SET {', '.join(f'{c} = s.{c}' for c in _VALUES)}, updated_at = :now "
               "FROM registry_stage s WHERE vehicles.plate_norm = s.plate_norm AND vehicles.region = s.region "
               f"AND ({_CHANGED})")
_INSERT_NEW = (
    f"INSERT INTO vehicles (plate_norm, region, {', '.join(_VALUES)}, updated_at) "
    f"SELECT s.plate_norm, s.region, {', '.join(f's.{c}' for c in _VALUES)}, :now FROM registry_stage s "
    "WHERE NOT EXISTS (SELECT 1 FROM vehicles v WHERE v.plate_norm = s.plate_norm AND v.region = s.region)")
# In plate order, so that the index insertions (the vehicles', then their keys') go to neighbouring
# pages; a PostgreSQL first load builds those indexes after the rows are in and skips the sort.
_INSERT = text(_INSERT_NEW + " ORDER BY s.plate_norm, s.region")
_INSERT_UNSORTED = text(_INSERT_NEW)
# SQLite: the symmetric-delete keys of the new vehicles (``plates.deletion_keys``): the plate, and the
# plate without its i-th character for each i that does not repeat the character before it (deleting
# either of two equal neighbours gives the same key, so each key comes once).
_KEYS = text(
    "INSERT INTO registry_keys (key, vehicle_id) "  # INSERT first: SQLite counts the rows of an INSERT only
    f"WITH RECURSIVE pos(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM pos WHERE i < {MAX_PLATE}) "
    "SELECT CASE WHEN pos.i = 0 THEN v.plate_norm "
    "ELSE substr(v.plate_norm, 1, pos.i - 1) || substr(v.plate_norm, pos.i + 1) END, v.id "
    "FROM vehicles v JOIN pos ON pos.i <= length(v.plate_norm) "
    "WHERE v.id > :after AND (pos.i <= 1 OR substr(v.plate_norm, pos.i, 1) <> substr(v.plate_norm, pos.i - 1, 1))")
KEYS_CHUNK = 50_000  # PostgreSQL: vehicles read back per COPY of their keys

# PostgreSQL, a first load (an import that at least doubles the registry): the unique (plate,
# region) index and the keys' primary key are dropped and built again after the rows are in, one
# sort each instead of one index insertion per row. The keys' foreign key is added back NOT VALID:
# every key was just computed from a vehicle of this same transaction, so the check of all of them
# would find nothing; the constraint still checks every key written later and still deletes a
# vehicle's keys with it. Until the import commits, lookups wait (import before violations arrive).
BULK_MIN = 100_000
_UNIQUE = "uq_vehicles_plate_region"  # as migration 0001 names them
_KEYS_PK, _KEYS_FK = "registry_keys_pkey", "registry_keys_vehicle_id_fkey"


def _copy_keys(session: Session, after: int) -> int:
    """PostgreSQL: the keys of the vehicles above id ``after``, computed here (``plates.deletion_keys``)
    and written by COPY: the server stores them a page at a time while the next are computed
    (``INSERT ... SELECT`` of the same keys costs it ~3x the CPU, one heap insertion per key)."""
    keys = 0
    with session.connection().connection.dbapi_connection.cursor() as cur:
        while rows := cur.execute("SELECT id, plate_norm FROM vehicles WHERE id > %s ORDER BY id LIMIT %s",
                                  (after, KEYS_CHUNK)).fetchall():
            with cur.copy("COPY registry_keys (key, vehicle_id) FROM STDIN") as copy:
                for i in range(0, len(rows), 5_000):
                    lines = []
                    for vid, plate in rows[i:i + 5_000]:
                        found = deletion_keys(plate)  # A-Z and 0-9: nothing to escape
                        keys += len(found)
                        tail = f"\t{vid}\n"
                        lines.append(tail.join(found) + tail)
                    copy.write("".join(lines))
            after = rows[-1][0]
    return keys


def _upsert(session: Session, report: ImportReport, staged: int, say: Progress) -> None:
    """Set-based: update the changed registrations, insert the new ones and their keys."""
    postgres = session.get_bind().dialect.name == "postgresql"
    t = time.perf_counter()
    now = time.time()
    report.updated = session.execute(_UPDATE, {"now": now}).rowcount
    say(f"{report.updated:,} registrations updated ({time.perf_counter() - t:.1f} s)")
    t = time.perf_counter()
    after = session.execute(text("SELECT coalesce(max(id), 0) FROM vehicles")).scalar_one()
    # at most ``after`` staged rows are registered already, so at least this many are new
    bulk = postgres and staged - after >= max(BULK_MIN, after)
    if bulk:
        session.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))  # the index builds sort in memory
        session.execute(text(f"ALTER TABLE vehicles DROP CONSTRAINT {_UNIQUE}"))
    report.inserted = session.execute(_INSERT_UNSORTED if bulk else _INSERT, {"now": now}).rowcount
    if bulk:
        session.execute(text(f"ALTER TABLE vehicles ADD CONSTRAINT {_UNIQUE} UNIQUE (plate_norm, region)"))
    say(f"{report.inserted:,} registrations inserted ({time.perf_counter() - t:.1f} s)")
    report.unchanged = staged - report.inserted - report.updated
    if report.inserted:
        t = time.perf_counter()
        if not postgres:
            keys = session.execute(_KEYS, {"after": after}).rowcount
        elif bulk:
            session.execute(text(f"ALTER TABLE registry_keys DROP CONSTRAINT {_KEYS_FK}"))
            session.execute(text(f"ALTER TABLE registry_keys DROP CONSTRAINT {_KEYS_PK}"))
            keys = _copy_keys(session, after)
            say(f"{keys:,} lookup keys written ({time.perf_counter() - t:.1f} s); indexing them")
            session.execute(text(f"ALTER TABLE registry_keys ADD CONSTRAINT {_KEYS_PK} PRIMARY KEY (key, vehicle_id)"))
            session.execute(text(f"ALTER TABLE registry_keys ADD CONSTRAINT {_KEYS_FK} FOREIGN KEY (vehicle_id) "
                                 "REFERENCES vehicles (id) ON DELETE CASCADE NOT VALID"))
        else:
            keys = _copy_keys(session, after)
        say(f"{keys:,} lookup keys added ({time.perf_counter() - t:.1f} s)")
    if postgres and report.inserted + report.updated >= 10_000:
        session.execute(text("ANALYZE vehicles"))  # fresh statistics keep the lookups' plans right
        session.execute(text("ANALYZE registry_keys"))


def registry_csv(rows: list[dict[str, str]]) -> str:
    """CSV text with the registry header (for tests, benchmarks and the simulator)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS)
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()
