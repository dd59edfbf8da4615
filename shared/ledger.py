"""How many times a consumer started on a message without reaching an outcome, kept on disk.

A message is counted when its handler starts and forgotten when it is acknowledged (handled or
dead-lettered). What is left counts the runs that ended in ``RetryLater`` or in a crash, and
survives a restart, so a message that keeps the handler from finishing is recognised as poison
however often the broker redelivers it. Keyed by event id, else by the payload's SHA-256.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class AttemptLedger:
    def __init__(self, path: str | Path | None = None):
        """``path``: the SQLite file (its folder is created); None keeps the counts in memory."""
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path) if path is not None else ":memory:"
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # survives a process crash
        self._db.execute("CREATE TABLE IF NOT EXISTS attempts (key TEXT PRIMARY KEY, count INTEGER NOT NULL, "
                         "last_error TEXT, first_at REAL NOT NULL, last_at REAL NOT NULL)")
        self._lock = threading.Lock()

    def attempts(self, keys: list[str]) -> dict[str, tuple[int, str | None]]:
        """(count, last error) of each key that has any."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT key, count, last_error FROM attempts WHERE key IN ({','.join('?' * len(keys))})", keys)
            return {k: (int(c), e) for k, c, e in rows.fetchall()}

    def start(self, keys: list[str]) -> int:
        """Count one more run of each message (one transaction); the highest count among them."""
        now, keys = time.time(), list(dict.fromkeys(keys))  # a batch may hold a redelivered copy
        with self._lock, self._transaction():
            self._db.executemany(
                "INSERT INTO attempts (key, count, first_at, last_at) VALUES (?, 1, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET count = count + 1, last_at = excluded.last_at",
                [(k, now, now) for k in keys])
            row = self._db.execute(
                f"SELECT MAX(count) FROM attempts WHERE key IN ({','.join('?' * len(keys))})", keys).fetchone()
        return int(row[0] or 0)

    def failed(self, keys: list[str], error: str) -> None:
        """Remember why the last run of these messages ended without an outcome."""
        with self._lock, self._transaction():
            self._db.executemany("UPDATE attempts SET last_error = ? WHERE key = ?", [(error[:500], k) for k in keys])

    def finish(self, keys: list[str]) -> None:
        """These messages have their outcome: forget them."""
        if keys:
            with self._lock, self._transaction():
                self._db.executemany("DELETE FROM attempts WHERE key = ?", [(k,) for k in keys])

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
