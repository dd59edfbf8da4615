"""``import-registry``: validated bulk upsert of vehicles and owners from CSV, with a report of
the rows it rejected (line number and reason). Columns (header required, any order, extra columns
refused): plate, region, make, model, colour, vehicle_class, owner_name, owner_address.

How (a state's extract is millions of rows, refreshed nightly or weekly): every row is checked in
Python and the good ones are loaded into a temporary staging table - PostgreSQL ``COPY``, SQLite
``executemany`` - then the registry is brought up to date with a few set-based statements in the
same transaction: repeated plates are rejected, changed registrations updated, new ones inserted
and their symmetric-delete keys (``registry_keys``) computed by the database. The whole import is
one transaction: all of it or nothing.
"""

from __future__ import annotations

import csv
import io
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sqlalchemy import text
from sqlalchemy.orm import Session

from . import audit
from .desk import Desk
from .models import User
from .plates import MAX_PLATE

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
FLUSH_ROWS = 20_000  # rows per COPY write / executemany
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
    if not plate.isascii():
        plate = unicodedata.normalize("NFKD", plate).encode("ascii", "ignore").decode()
    return _NOT_ALNUM.sub("", plate.upper())


def _validate(values: list[str], order: list[int]) -> tuple[tuple | None, str | None]:
    """One CSV record (``order``: the file's position of each of COLUMNS) as a staging row
    without its line number, or the reason it is refused."""
    if len(values) != len(order):
        return None, "wrong number of fields"
    plate, region, make, model, colour, vclass, owner, address = (values[i].strip() for i in order)
    if not plate:
        return None, "plate is empty"
    if not region:
        return None, "region is empty"
    if not owner:
        return None, "owner_name is empty"
    for name, value in zip(COLUMNS, (plate, region, make, model, colour, vclass, owner, address)):
        if len(value) > _LIMITS[name]:
            return None, f"{name} longer than {_LIMITS[name]} characters"
    region = region.lower()
    if not _REGION.match(region):
        return None, "region: letters, digits, _ or - only"
    norm = _plate_norm(plate)
    if not 2 <= len(norm) <= MAX_PLATE:
        return None, f"plate {plate!r} has {len(norm)} letters/digits (2-{MAX_PLATE} needed)"
    return (norm, plate, region, make, model, colour.lower(), vclass.lower(), owner, address), None


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
    stage = _Stage(session)
    read = 0
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
    stage.flush()
    say(f"{read:,} rows read and staged, {len(report.rejected):,} rejected "
        f"({time.perf_counter() - start:.1f} s)")
    repeats = _reject_repeats(session, report)
    _upsert(session, report, stage.staged - repeats, say)
    stage.drop()
    report.rejected.sort()
    audit.record(session, actor, "registry.import", "registry", label[-64:], None, {
        "inserted": report.inserted, "updated": report.updated, "unchanged": report.unchanged,
        "rejected": len(report.rejected)})
    say(f"done in {time.perf_counter() - start:.1f} s: {report.summary()}")
    return report


class _Stage:
    """The temporary staging table, filled in batches: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, session: Session):
        self.conn = session.connection()
        self.postgres = self.conn.dialect.name == "postgresql"
        self.rows: list[tuple] = []
        self.staged = 0  # rows written to the table
        columns = ", ".join(f"{c} {'INTEGER' if c == 'line' else 'TEXT'} NOT NULL" for c in STAGE)
        self.conn.exec_driver_sql(f"CREATE TEMP TABLE registry_stage ({columns})"
                                  + (" ON COMMIT DROP" if self.postgres else ""))

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        if self.postgres:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(self.rows)
            cur = self.conn.connection.dbapi_connection.cursor()
            try:
                with cur.copy(f"COPY registry_stage ({', '.join(STAGE)}) FROM STDIN "
                              f"WITH (FORMAT csv, FORCE_NOT_NULL ({', '.join(STAGE)}))") as copy:
                    copy.write(buf.getvalue())
            finally:
                cur.close()
        else:
            self.conn.exec_driver_sql(f"INSERT INTO registry_stage VALUES ({', '.join('?' * len(STAGE))})",
                                      self.rows)
        self.staged += len(self.rows)
        self.rows = []

    def drop(self) -> None:
        self.conn.exec_driver_sql("DROP TABLE registry_stage")


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
_INSERT = text(
    f"INSERT INTO vehicles (plate_norm, region, {', '.join(_VALUES)}, updated_at) "
    f"SELECT s.plate_norm, s.region, {', '.join(f's.{c}' for c in _VALUES)}, :now FROM registry_stage s "
    "WHERE NOT EXISTS (SELECT 1 FROM vehicles v WHERE v.plate_norm = s.plate_norm AND v.region = s.region) "
    "ORDER BY s.plate_norm, s.region")
# The symmetric-delete keys of the new vehicles (``plates.deletion_keys``): the plate, and the plate
# without its i-th character for each i that does not repeat the character before it (deleting
# either of two equal neighbours gives the same key, so each key comes once).
_KEYS = text(
    "INSERT INTO registry_keys (key, vehicle_id) "  # INSERT first: SQLite counts the rows of an INSERT only
    f"WITH RECURSIVE pos(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM pos WHERE i < {MAX_PLATE}) "
    "SELECT CASE WHEN pos.i = 0 THEN v.plate_norm "
    "ELSE substr(v.plate_norm, 1, pos.i - 1) || substr(v.plate_norm, pos.i + 1) END, v.id "
    "FROM vehicles v JOIN pos ON pos.i <= length(v.plate_norm) "
    "WHERE v.id > :after AND (pos.i <= 1 OR substr(v.plate_norm, pos.i, 1) <> substr(v.plate_norm, pos.i - 1, 1))")


# PostgreSQL: when an import at least doubles the registry (a first load), the keys table's primary
# key and foreign key are dropped, the keys inserted, then both rebuilt in one pass each (a sort,
# an anti-join) instead of one index insertion and one foreign-key check per key (~3x faster).
# Until the import commits this blocks lookups, which only matters if violations already arrive.
BULK_KEYS_MIN = 100_000
_KEYS_PK, _KEYS_FK = "registry_keys_pkey", "registry_keys_vehicle_id_fkey"  # as migration 0001 names them


def _add_keys_rebuilding_index(session: Session, after: int) -> int:
    session.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    session.execute(text(f"ALTER TABLE registry_keys DROP CONSTRAINT {_KEYS_FK}"))
    session.execute(text(f"ALTER TABLE registry_keys DROP CONSTRAINT {_KEYS_PK}"))
    keys = session.execute(_KEYS, {"after": after}).rowcount
    session.execute(text(f"ALTER TABLE registry_keys ADD CONSTRAINT {_KEYS_PK} PRIMARY KEY (key, vehicle_id)"))
    session.execute(text(f"ALTER TABLE registry_keys ADD CONSTRAINT {_KEYS_FK} FOREIGN KEY (vehicle_id) "
                         "REFERENCES vehicles (id) ON DELETE CASCADE"))
    return keys


def _upsert(session: Session, report: ImportReport, staged: int, say: Progress) -> None:
    """Set-based: update the changed registrations, insert the new ones and their keys."""
    postgres = session.get_bind().dialect.name == "postgresql"
    t = time.perf_counter()
    if postgres:
        session.execute(text("ANALYZE registry_stage"))  # temporary tables get no statistics otherwise
        # imports one at a time (new vehicles are those above the largest id); lookups go on reading
        session.execute(text("LOCK TABLE vehicles IN SHARE ROW EXCLUSIVE MODE"))
    now = time.time()
    report.updated = session.execute(_UPDATE, {"now": now}).rowcount
    say(f"{report.updated:,} registrations updated ({time.perf_counter() - t:.1f} s)")
    t = time.perf_counter()
    after = session.execute(text("SELECT coalesce(max(id), 0) FROM vehicles")).scalar_one()
    report.inserted = session.execute(_INSERT, {"now": now}).rowcount
    say(f"{report.inserted:,} registrations inserted ({time.perf_counter() - t:.1f} s)")
    report.unchanged = staged - report.inserted - report.updated
    if report.inserted:
        t = time.perf_counter()
        if postgres and report.inserted >= max(BULK_KEYS_MIN, after):
            keys = _add_keys_rebuilding_index(session, after)
        else:
            keys = session.execute(_KEYS, {"after": after}).rowcount
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
