"""Migrations: an empty database upgrades to head; earlier revisions upgrade with their data;
the models match what the migrations create."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, inspect, text

from stopline.services.violation_desk import db
from stopline.services.violation_desk.models import Base


@pytest.fixture()
def engine(empty_db_url) -> Iterator[Engine]:
    """An engine on an empty database."""
    engine = db.make_engine(empty_db_url)
    yield engine
    engine.dispose()


def _add_camera(engine: Engine, revision: str, name: str = "North") -> None:
    db.upgrade(engine, revision)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO cameras (id, name, created_at) VALUES ('cam1', '{name}', 1.0)"))


def test_empty_database_upgrades_to_head(engine):
    assert db.current_revision(engine) is None
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    db.upgrade(engine)  # running it again on every start is harmless
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_previous_revision_upgrades_with_its_data(engine):
    _add_camera(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (username, password_hash, role, active, session_version, created_at) "
            "VALUES ('ann', 'x', 'admin', true, 1, 1.0)"))
    assert "api_tokens" not in inspect(engine).get_table_names()
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM cameras WHERE id = 'cam1'")).scalar() == "North"
        assert conn.execute(text("SELECT count(*) FROM api_tokens")).scalar() == 0
    db.downgrade(engine, "0001")
    assert "api_tokens" not in inspect(engine).get_table_names()


def test_evidence_stored_before_bundles_keeps_its_own_file(engine):
    _add_camera(engine, "0002")
    with engine.begin() as conn:
        vid = conn.execute(text(
            "INSERT INTO violations (event_id, site, camera_id, track_id, vehicle_class, crossed_at, detected_at, "
            "received_at, frame_index, signal_phase, time_into_red_s, plate_corrected, match_kind, clone_flag, "
            "integrity, integrity_detail, status, message_json) VALUES ('e1', 's', 'cam1', 1, 'car', 1.0, 1.0, "
            "1.0, 1, 'red', 1.0, false, 'none', false, 'verified', '', 'queued', '{}') RETURNING id")).scalar()
        conn.execute(text(
            "INSERT INTO evidence (violation_id, position, kind, name, sha256, content_type, size, intact, "
            f"meta_json) VALUES ({vid}, 0, 'evidence', 'a.jpg', '{'ab' * 32}', 'image/jpeg', 10, true, '{{}}')"))
    db.upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT file_sha256, file_offset FROM evidence")).one()
    assert tuple(row) == ("ab" * 32, 0)
    db.downgrade(engine, "0002")  # nothing bundled yet: allowed
    assert "file_sha256" not in {c["name"] for c in inspect(engine).get_columns("evidence")}


def test_models_match_migrations(db_url):
    engine = db.make_engine(db_url)
    try:
        insp = inspect(engine)
        for name, table in Base.metadata.tables.items():
            columns = {c["name"] for c in insp.get_columns(name)}
            assert columns == {c.name for c in table.columns}, name
            indexed = {i["name"] for i in insp.get_indexes(name)}
            assert {i.name for i in table.indexes} <= indexed, name
    finally:
        engine.dispose()


def test_web_sessions_arrive_with_0004_and_leave_on_downgrade(engine):
    db.upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO users (username, password_hash, role, active, session_version, created_at) "
            "VALUES ('ann', 'x', 'admin', true, 1, 1.0)"))
    assert "web_sessions" not in inspect(engine).get_table_names()
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO web_sessions (id_sha256, user_id, created_at, expires_at) "
                          "SELECT 'abc', id, 1.0, 2.0 FROM users WHERE username = 'ann'"))
        assert conn.execute(text("SELECT address FROM web_sessions")).scalar() == ""
    db.downgrade(engine, "0003")
    assert "web_sessions" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT username FROM users")).scalar() == "ann"



def test_0006_plates_in_byte_order_without_the_redundant_index(engine, backend):
    """0006 drops ix_vehicles_plate_norm (the unique (plate_norm, region) index leads with it) and,
    on PostgreSQL, gives the plate columns byte order; a registry from before finds its matches."""
    from sqlalchemy.orm import Session

    from stopline.services.violation_desk.lookup import lookup
    from stopline.services.violation_desk.plates import deletion_keys

    def collations() -> set[str | None]:
        with engine.connect() as conn:
            return set(conn.execute(text(
                "SELECT collation_name FROM information_schema.columns WHERE (table_name, column_name) IN "
                "(('vehicles', 'plate_norm'), ('registry_keys', 'key'))")).scalars())

    db.upgrade(engine, "0005")
    plates = ["AB123CD", "XY98", "Q1"]
    with engine.begin() as conn:
        for i, plate in enumerate(plates):
            vid = conn.execute(text(
                "INSERT INTO vehicles (plate_norm, plate, region, make, model, colour, vehicle_class, owner_name, "
                f"owner_address, updated_at) VALUES ('{plate}', '{plate}', 'eu', '', '', '', '', 'Owner {i}', '', 1.0) "
                "RETURNING id")).scalar()
            for key in deletion_keys(plate):
                conn.execute(text(f"INSERT INTO registry_keys (key, vehicle_id) VALUES ('{key}', {vid})"))
    db.upgrade(engine)
    assert "ix_vehicles_plate_norm" not in {i["name"] for i in inspect(engine).get_indexes("vehicles")}
    if backend == "postgresql":
        assert collations() == {"C"}
    with Session(engine) as s:
        for read, plate, kind in [("AB123CD", "AB123CD", "exact"), ("A8123CD", "AB123CD", "confusion"),
                                  ("AB1239CD", "AB123CD", "edit"), ("AB12CD", "AB123CD", "edit"),
                                  ("XY98", "XY98", "exact"), ("XY983", "XY98", "edit"), ("Q", "Q1", "edit"),
                                  ("QI", "Q1", "confusion"), ("Q12", "Q1", "edit")]:
            found = [(m.vehicle.plate_norm, m.kind) for m in lookup(s, read, "eu", 0.99, 0.9).candidates]
            assert (plate, kind) in found, (read, found)
    db.downgrade(engine, "0005")
    assert "ix_vehicles_plate_norm" in {i["name"] for i in inspect(engine).get_indexes("vehicles")}
    if backend == "postgresql":
        assert collations() == {None}
