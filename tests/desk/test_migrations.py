"""Migrations: an empty database upgrades to head; the previous revision upgrades with its data;
the models match what the migrations create."""

from __future__ import annotations

from sqlalchemy import inspect, text

from stopline.services.violation_desk import db
from stopline.services.violation_desk.models import Base


def test_empty_database_upgrades_to_head(empty_db_url):
    engine = db.make_engine(empty_db_url)
    try:
        assert db.current_revision(engine) is None
        db.upgrade(engine)
        assert db.current_revision(engine) == db.head_revision()
        db.upgrade(engine)  # running it again on every start is harmless
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_previous_revision_upgrades_with_its_data(empty_db_url):
    engine = db.make_engine(empty_db_url)
    try:
        db.upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO cameras (id, name, created_at) VALUES ('cam1', 'North', 1.0)"))
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
    finally:
        engine.dispose()


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
