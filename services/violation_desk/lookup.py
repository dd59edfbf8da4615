"""Owner lookup: exact on the normalised plate, then registrations within one OCR confusion or one
edit. Near matches are only ever shown to the reviewer; a registration is assigned automatically
only for a unique exact match read with at least ``auto_assign_confidence``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from .models import RegistryKey, Vehicle
from .plates import deletion_keys, relation

KIND_SCORE = {"exact": 1.0, "confusion": 0.85, "edit": 0.6}
OTHER_REGION_FACTOR = 0.8
MAX_CANDIDATES = 10
UNKNOWN_REGIONS = {"", "auto", "unknown", "none"}

# Words detectors and registries use for the same thing.
_CLASS_SYNONYMS = {"motorbike": "motorcycle", "lorry": "truck", "automobile": "car", "sedan": "car",
                   "hatchback": "car", "coach": "bus"}
# Registry classes a detector (COCO: car/truck/bus/motorcycle) may fairly report either way.
_CLASS_COMPATIBLE = {"van": {"car", "truck"}, "suv": {"car", "truck"}, "pickup": {"car", "truck"},
                     "minibus": {"bus", "truck", "car"}}
_COLOUR_SYNONYMS = {"grey": "gray", "silver": "gray"}


@dataclass(frozen=True)
class Match:
    vehicle: Vehicle
    kind: str
    score: float


@dataclass
class LookupResult:
    candidates: list[Match] = field(default_factory=list)
    assigned: Vehicle | None = None
    match_kind: str = "none"  # exact | manual | none

    @property
    def best(self) -> Match | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True)
class LookupQuery:
    plate_norm: str | None
    region: str | None
    confidence: float | None


def _same_region(a: str | None, b: str) -> bool | None:
    a = (a or "").lower()
    if a in UNKNOWN_REGIONS or b.lower() in UNKNOWN_REGIONS:
        return None
    return a == b.lower()


def _rank(query: LookupQuery, vehicles: Iterable[Vehicle]) -> list[Match]:
    matches = []
    for v in vehicles:
        kind = relation(query.plate_norm or "", v.plate_norm)
        if kind is None:
            continue
        score = KIND_SCORE[kind]
        if _same_region(query.region, v.region) is False:
            score *= OTHER_REGION_FACTOR
        matches.append(Match(v, kind, round(score, 4)))
    matches.sort(key=lambda m: (-m.score, m.vehicle.plate_norm, m.vehicle.id))
    return matches[:MAX_CANDIDATES]


def _decide(query: LookupQuery, matches: list[Match], threshold: float, manual: bool) -> LookupResult:
    result = LookupResult(candidates=matches)
    exact = [m for m in matches if m.kind == "exact" and _same_region(query.region, m.vehicle.region) is not False]
    if len(exact) != 1:
        return result
    if manual:
        result.assigned, result.match_kind = exact[0].vehicle, "manual"
    elif query.confidence is not None and query.confidence >= threshold:
        result.assigned, result.match_kind = exact[0].vehicle, "exact"
    return result


def lookup_many(session: Session, queries: Sequence[LookupQuery], threshold: float,
                manual: bool = False) -> list[LookupResult]:
    """One registry query for a whole batch of plates (the symmetric-delete keys of all of them)."""
    keys_of = [deletion_keys(q.plate_norm) if q.plate_norm else set() for q in queries]
    all_keys = set().union(*keys_of) if keys_of else set()
    by_key: dict[str, list[Vehicle]] = {}
    if all_keys:
        # each vehicle once; its index keys are the deletion keys of its plate (as the registry stores them)
        for vehicle in session.scalars(select(Vehicle).where(Vehicle.id.in_(
                select(RegistryKey.vehicle_id).where(_key_in(session, sorted(all_keys)))))):
            for key in deletion_keys(vehicle.plate_norm):
                by_key.setdefault(key, []).append(vehicle)
    results = []
    for q, keys in zip(queries, keys_of):
        seen: dict[int, Vehicle] = {}
        for k in keys:
            for v in by_key.get(k, ()):
                seen[v.id] = v
        results.append(_decide(q, _rank(q, seen.values()), threshold, manual))
    return results


def _key_in(session: Session, keys: list[str]) -> ColumnElement[bool]:
    """``key = ANY(:keys)`` on PostgreSQL: one array parameter, so the statement text is the same
    for every batch (an IN list of hundreds of parameters is re-parsed by psycopg each time)."""
    if session.get_bind().dialect.name == "postgresql":
        return RegistryKey.key == any_(bindparam("keys", keys, type_=ARRAY(String)))
    return RegistryKey.key.in_(keys)


def lookup(session: Session, plate_norm: str | None, region: str | None, confidence: float | None,
           threshold: float, manual: bool = False) -> LookupResult:
    return lookup_many(session, [LookupQuery(plate_norm, region, confidence)], threshold, manual)[0]


def clone_check(vehicle: Vehicle | None, detected_class: str | None, detected_colour: str | None) -> str | None:
    """A reason when the detected vehicle does not look like the registered one, else None."""
    if vehicle is None:
        return None
    problems = []
    dc = _CLASS_SYNONYMS.get((detected_class or "").lower(), (detected_class or "").lower())
    rc = _CLASS_SYNONYMS.get(vehicle.vehicle_class.lower(), vehicle.vehicle_class.lower())
    # "motion": the edge's safety net tracked a moving blob its model did not name (no class)
    if dc and dc != "motion" and rc and dc != rc and dc not in _CLASS_COMPATIBLE.get(rc, ()):
        problems.append(f"class: detected {detected_class}, registered {vehicle.vehicle_class}")
    dk = _COLOUR_SYNONYMS.get((detected_colour or "").lower(), (detected_colour or "").lower())
    rk = _COLOUR_SYNONYMS.get(vehicle.colour.lower(), vehicle.colour.lower())
    if dk and rk and dk not in ("unknown",) and dk != rk:
        problems.append(f"colour: detected {detected_colour}, registered {vehicle.colour}")
    return "; ".join(problems) or None
