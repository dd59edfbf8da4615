"""Desk fixtures: every desk test runs on SQLite and on a real PostgreSQL.

PostgreSQL: ``STOPLINE_TEST_POSTGRES_URL`` (a server URL whose user may CREATE DATABASE) when set,
else a throwaway cluster started here with the Debian PostgreSQL binaries (initdb + pg_ctl as
the ``postgres`` user when running as root), on a free loopback port, stopped at the end.
Each test gets a fresh database cloned from a migrated template (fast), or an empty one.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from stopline.services.violation_desk import db
from stopline.services.violation_desk.desk import Desk

TEMPLATE = "desk_template"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class _Cluster:
    def __init__(self) -> None:
        bindir = _pg_bin()
        if bindir is None:
            pytest.skip("PostgreSQL binaries not installed (apt-get install postgresql) and "
                        "STOPLINE_TEST_POSTGRES_URL not set")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="stopline-pg-"))
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self.data = self.root / "data"
        self.port = _free_port()
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", opts, "-w", "start")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class PgServer:
    """Creates and drops databases on one server."""

    def __init__(self, url: str):
        self.url = db.normalise_url(url)
        self._template_ready = False

    def _admin(self):
        import psycopg

        u = make_url(self.url)
        return psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                               dbname=u.database or "postgres", autocommit=True)

    def db_url(self, name: str) -> str:
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def migrated(self) -> str:
        if not self._template_ready:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
                conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
            engine = db.make_engine(self.db_url(TEMPLATE))
            db.upgrade(engine)
            engine.dispose()
            self._template_ready = True
        return self.create(TEMPLATE)

    def drop(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    url = os.environ.get("STOPLINE_TEST_POSTGRES_URL")
    if url:
        yield PgServer(url)
        return
    cluster = _Cluster()
    try:
        yield PgServer(cluster.url)
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "desk.db"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch):
    """Argon2 with its production cost takes ~0.4 s per hash on the shared CI cores; tests that
    create a handful of users per test use the cheapest argon2id parameters instead
    (test_users.py checks the production parameters separately)."""
    from argon2 import PasswordHasher

    from stopline.services.violation_desk import users

    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend, request, tmp_path, sqlite_template) -> Iterator[str]:
    """A fresh, migrated database on each backend."""
    if backend == "sqlite":
        path = tmp_path / "desk.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = server.migrated()
    yield server.db_url(name)
    server.drop(name)


@pytest.fixture
def empty_db_url(backend, request, tmp_path) -> Iterator[str]:
    """A fresh database with no schema at all."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = server.create()
    yield server.db_url(name)
    server.drop(name)


@pytest.fixture
def desk(db_url, tmp_path) -> Iterator[Desk]:
    d = Desk(db_url, tmp_path / "evidence", site="test", durable_evidence=False)
    yield d
    d.close()


PASSWORD = "correct horse battery"
REGISTRY = [
    dict(plate="AB-123 CD", region="eu", make="VW", model="Golf", colour="red", vehicle_class="car",
         owner_name="Ann Example", owner_address="1 High Street, Springfield"),
    dict(plate="AB123C0", region="eu", make="Ford", model="Transit", colour="white", vehicle_class="truck",
         owner_name="Bob Example", owner_address="2 Low Road, Shelbyville"),
    dict(plate="XY987ZZ", region="eu", make="Fiat", model="Panda", colour="blue", vehicle_class="car",
         owner_name="Cleo Example", owner_address="3 Mid Lane, Ogdenville"),
]
USERS = {"rita": "reviewer", "rob": "reviewer", "sue": "supervisor", "adam": "admin"}


@pytest.fixture
def seeded(desk) -> Desk:
    """A desk with a registry and one user of each role (+ a second reviewer), password PASSWORD."""
    import io

    from stopline.services.violation_desk.registry import import_registry, registry_csv
    from stopline.services.violation_desk.users import add_user

    import_registry(desk, io.StringIO(registry_csv(REGISTRY)))
    for name, role in USERS.items():
        add_user(desk, name, PASSWORD, role)
    return desk


def user(desk: Desk, session, name: str):
    from sqlalchemy import select

    from stopline.services.violation_desk.models import User

    return session.scalar(select(User).where(User.username == name))
