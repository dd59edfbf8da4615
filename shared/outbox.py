"""A durable outbox: what a producer captured is on disk before it is published, and stays
there until the broker acknowledged it. A crash, a restart or a broker outage loses nothing;
the sender resends whatever is pending (consumers are idempotent by event id)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

from stopline.shared.bus import Bus, BusClosed

log = logging.getLogger(__name__)


class Outbox:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "topic TEXT NOT NULL, payload BLOB NOT NULL, created_at REAL NOT NULL)"
        )
        self._lock = threading.Lock()
        self._added = threading.Condition(self._lock)

    def put(self, topic: str, payload: bytes) -> int:
        with self._added:
            cur = self._db.execute("INSERT INTO outbox (topic, payload, created_at) VALUES (?, ?, ?)",
                                   (topic, payload, time.time()))
            self._added.notify_all()
            return int(cur.lastrowid)

    def pending(self, limit: int = 100) -> list[tuple[int, str, bytes]]:
        with self._lock:
            rows = self._db.execute("SELECT id, topic, payload FROM outbox ORDER BY id LIMIT ?", (limit,))
            return [(int(i), t, bytes(p)) for i, t, p in rows.fetchall()]

    def delete(self, row_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def wait_for_new(self, timeout: float) -> None:
        with self._added:
            self._added.wait(timeout)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class OutboxSender:
    """Publishes pending outbox rows in order through the bus, deleting each once acked."""

    def __init__(self, outbox: Outbox, bus: Bus):
        self.outbox = outbox
        self.bus = bus
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)

    def start(self) -> "OutboxSender":
        self._thread.start()
        return self

    def stop(self, drain_s: float = 5.0) -> None:
        """Stop after trying to drain for ``drain_s``; what is left stays on disk for next time."""
        deadline = time.monotonic() + drain_s
        while len(self.outbox) and time.monotonic() < deadline and self.bus.wait_connected(0):
            time.sleep(0.1)
        self._stop.set()
        self._thread.join(drain_s + 2)

    def _run(self) -> None:
        while not self._stop.is_set():
            rows = self.outbox.pending()
            if not rows:
                self.outbox.wait_for_new(0.5)
                continue
            for row_id, topic, payload in rows:
                try:
                    # waits through broker outages: paho resends on reconnect
                    self.bus.publish_raw(topic, payload)
                except BusClosed:
                    return
                self.outbox.delete(row_id)
                self.sent += 1
                if self._stop.is_set():
                    return
