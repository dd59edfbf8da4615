"""``import-registry``: validated upsert of vehicles and owners from CSV, with a report of the
rows it rejected (line number and reason). Columns (header required, any order, extra columns
refused): plate, region, make, model, colour, vehicle_class, owner_name, owner_address."""

from __future__ import annotations

import csv
import io
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .desk import Desk
from .models import RegistryKey, User, Vehicle
from .plates import deletion_keys, normalise_plate
from .sql import insert_rows

COLUMNS = ("plate", "region", "make", "model", "colour", "vehicle_class", "owner_name", "owner_address")
REQUIRED = ("plate", "region", "owner_name")
_LIMITS = {"plate": 32, "region": 16, "make": 64, "model": 64, "colour": 32, "vehicle_class": 32,
           "owner_name": 200, "owner_address": 1000}
_REGION = re.compile(r"^[a-z0-9_-]{1,16}$")
CHUNK = 500  # rows per multi-row INSERT (SQLite allows 32766 parameters)


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


def _validate(raw: dict[str, str | None]) -> tuple[dict[str, str] | None, str | None]:
    if None in raw or any(v is None for v in raw.values()):
        return None, "wrong number of fields"
    row = {k: (v or "").strip() for k, v in raw.items()}
    for k in REQUIRED:
        if not row[k]:
            return None, f"{k} is empty"
    for k, limit in _LIMITS.items():
        if len(row[k]) > limit:
            return None, f"{k} longer than {limit} characters"
    row["region"] = row["region"].lower()
    if not _REGION.match(row["region"]):
        return None, "region: letters, digits, _ or - only"
    norm = normalise_plate(row["plate"])
    if not 2 <= len(norm) <= 16:
        return None, f"plate {row['plate']!r} has {len(norm)} letters/digits (2-16 needed)"
    row["plate_norm"] = norm
    row["colour"] = row["colour"].lower()
    row["vehicle_class"] = row["vehicle_class"].lower()
    return row, None


def import_registry(target: Desk | Session, source: str | Path | TextIO, *, actor: User | None = None) -> ImportReport:
    """Upsert every valid row (keyed by normalised plate + region) in one transaction."""
    if isinstance(target, Desk):
        with target.session() as s, s.begin():
            return import_registry(s, source, actor=actor)
    if isinstance(source, (str, Path)):
        try:
            with open(source, encoding="utf-8-sig", newline="") as f:
                return _import(target, f, actor, str(source))
        except (OSError, UnicodeDecodeError) as e:
            raise RegistryError(f"{source}: cannot read: {e}") from None
    return _import(target, source, actor, getattr(source, "name", "<stream>"))


def _import(session: Session, f: TextIO, actor: User | None, label: str) -> ImportReport:
    reader = csv.DictReader(f)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    extra = [c for c in header if c not in COLUMNS]
    if missing or extra:
        raise RegistryError(f"{label}: header must be {','.join(COLUMNS)}"
                            + (f"; missing {', '.join(missing)}" if missing else "")
                            + (f"; unknown {', '.join(extra)}" if extra else ""))
    reader.fieldnames = header
    report = ImportReport()
    seen: dict[tuple[str, str], int] = {}
    chunk: list[dict[str, str]] = []
    try:
        for raw in reader:
            line = reader.line_num
            row, reason = _validate(raw)
            if row is None:
                report.rejected.append((line, reason or "invalid"))
                continue
            key = (row["plate_norm"], row["region"])
            if key in seen:
                report.rejected.append((line, f"same plate and region as line {seen[key]}"))
                continue
            seen[key] = line
            chunk.append(row)
            if len(chunk) >= CHUNK:
                _upsert(session, chunk, report)
                chunk = []
    except (csv.Error, UnicodeDecodeError) as e:
        raise RegistryError(f"{label}: line {reader.line_num}: {e}") from None
    if chunk:
        _upsert(session, chunk, report)
    audit.record(session, actor, "registry.import", "registry", label[-64:], None, {
        "inserted": report.inserted, "updated": report.updated, "unchanged": report.unchanged,
        "rejected": len(report.rejected)})
    return report


_FIELDS = ("plate", "make", "model", "colour", "vehicle_class", "owner_name", "owner_address")


def _upsert(session: Session, rows: list[dict[str, str]], report: ImportReport) -> None:
    now = time.time()
    # by plate only (its index; PostgreSQL scans the whole table for a (plate, region) IN list)
    existing = {(v.plate_norm, v.region): v for v in session.scalars(
        select(Vehicle).where(Vehicle.plate_norm.in_({r["plate_norm"] for r in rows})))}
    new = []
    for r in rows:
        v = existing.get((r["plate_norm"], r["region"]))
        if v is None:
            new.append(r)
            continue
        if all(getattr(v, k) == r[k] for k in _FIELDS):
            report.unchanged += 1
            continue
        for k in _FIELDS:
            setattr(v, k, r[k])
        v.updated_at = now
        report.updated += 1
    if not new:
        return
    values = [dict(plate_norm=r["plate_norm"], region=r["region"], updated_at=now, **{k: r[k] for k in _FIELDS})
              for r in new]
    ids = insert_rows(session, Vehicle.__table__, values, ["id", "plate_norm"])
    insert_rows(session, RegistryKey.__table__, [
        {"key": k, "vehicle_id": vid} for vid, norm in ids for k in deletion_keys(norm)])
    report.inserted += len(ids)


def registry_csv(rows: list[dict[str, str]]) -> str:
    """CSV text with the registry header (for tests and the simulator)."""
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS)
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()
