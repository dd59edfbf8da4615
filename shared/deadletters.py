"""Dead-lettered payloads kept on disk, so that a refused message is never lost.

Before the bus acknowledges a message it dead-letters, it writes the payload (up to
``mqtt.max_message_bytes``) to ``<state_dir>/deadletters/<service>/<sha256>.msg`` with a JSON
sidecar ``<sha256>.json`` (topic, reason, time, attempts, whether a replay may succeed). Both
are written to a temporary file and renamed, the sidecar first, so a ``.msg`` file is always
complete. The same payload dead-lettered twice is one entry (its sidecar says the latest why).

``replay`` republishes stored payloads to their original topic and removes each once the
broker acknowledged it. While it publishes, the payload is renamed to ``<sha256>.replay``: if
the consumer dead-letters the same payload again meanwhile, that new entry is kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STORE = "deadletters"


def store_dir(state_dir: str | Path, service: str) -> Path:
    """Where one service keeps its dead-lettered payloads."""
    return Path(state_dir) / STORE / service


@dataclass(frozen=True)
class Stored:
    """One kept payload, as its sidecar describes it."""

    sha256: str
    service: str
    topic: str
    reason: str
    at: float
    attempts: int
    payload_bytes: int
    complete: bool  # False when the payload was over max_message_bytes and only its start is kept
    retryable: bool  # it ran out of RetryLater attempts: a replay after the outage may succeed
    path: Path

    def row(self) -> str:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.at))
        flags = ("retryable" if self.retryable else "-") + ("" if self.complete else ",truncated")
        return f"{self.sha256}  {self.service}  {when}  {self.payload_bytes}B  {flags}  {self.topic}  {self.reason}"


class DeadLetterStore:
    """The kept payloads of one service (``store_dir``)."""

    def __init__(self, root: str | Path, service: str):
        self.root = Path(root)
        self.service = service
        self._lock = threading.Lock()

    def put(self, topic: str, payload: bytes, reason: str, *, attempts: int, retryable: bool,
            max_bytes: int) -> str:
        """Keep ``payload`` (its first ``max_bytes``); its SHA-256. Raises OSError when the disk
        refuses."""
        sha = hashlib.sha256(payload).hexdigest()
        kept = payload[:max_bytes]
        meta = dict(sha256=sha, service=self.service, topic=topic, reason=reason, at=time.time(),
                    attempts=attempts, payload_bytes=len(payload), complete=len(kept) == len(payload),
                    retryable=retryable)
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.root / f"{sha}.json", json.dumps(meta, indent=1).encode())
            msg = self.root / f"{sha}.msg"
            if not (msg.exists() and msg.stat().st_size == len(kept)):
                _write_atomic(msg, kept)
        return sha

    def entries(self) -> list[Stored]:
        """Every kept payload, oldest first (one left by an interrupted replay included)."""
        found: dict[str, Path] = {}
        for path in sorted(self.root.glob("*.replay")) + sorted(self.root.glob("*.msg")):
            found[path.stem] = path  # a fresh .msg wins over an interrupted .replay
        return sorted((self._read(sha, path) for sha, path in found.items()), key=lambda s: s.at)

    def _read(self, sha: str, path: Path) -> Stored:
        try:
            meta = json.loads((self.root / f"{sha}.json").read_text())
        except (OSError, ValueError):  # sidecar lost: keep the payload visible
            meta = {}
        return Stored(sha256=sha, service=self.service, topic=str(meta.get("topic", "")),
                      reason=str(meta.get("reason", "(sidecar missing)")), at=float(meta.get("at", 0.0)),
                      attempts=int(meta.get("attempts", 0)), payload_bytes=int(meta.get("payload_bytes", 0)),
                      complete=bool(meta.get("complete", False)), retryable=bool(meta.get("retryable", False)),
                      path=path)

    def replay(self, entry: Stored, publish: Callable[[str, bytes], None]) -> None:
        """Publish the payload to its topic (``publish`` returns once the broker acknowledged
        it), then remove the entry. On any error the entry stays and the error is raised."""
        if not entry.topic:
            raise ValueError(f"{entry.sha256}: its sidecar is missing, the original topic is unknown")
        if not entry.complete:
            raise ValueError(f"{entry.sha256}: only the first bytes of a {entry.payload_bytes}-byte payload were kept")
        msg, claim = self.root / f"{entry.sha256}.msg", self.root / f"{entry.sha256}.replay"
        if entry.path == msg:
            os.replace(msg, claim)
        try:
            publish(entry.topic, claim.read_bytes())
        except BaseException:
            with self._lock:
                if msg.exists():  # dead-lettered again meanwhile: that entry is the same payload
                    claim.unlink(missing_ok=True)
                else:
                    os.replace(claim, msg)
            raise
        with self._lock:
            claim.unlink(missing_ok=True)
            if not msg.exists():
                (self.root / f"{entry.sha256}.json").unlink(missing_ok=True)


def stores(state_dir: str | Path, service: str | None = None) -> list[DeadLetterStore]:
    """The stores under ``state_dir`` (one service's, with ``service``)."""
    root = Path(state_dir) / STORE
    names = [service] if service else sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return [DeadLetterStore(store_dir(state_dir, name), name) for name in names]


def select(state_dir: str | Path, hashes: Iterable[str], all_retryable: bool,
           service: str | None = None) -> tuple[list[tuple[DeadLetterStore, Stored]], list[str]]:
    """The entries to replay: the named hashes (a unique prefix will do) or every retryable
    one; and the hashes that matched nothing."""
    pairs = [(store, e) for store in stores(state_dir, service) for e in store.entries()]
    if all_retryable:
        return [(s, e) for s, e in pairs if e.retryable], []
    chosen, missing = [], []
    for h in hashes:
        hits = [(s, e) for s, e in pairs if e.sha256.startswith(h.lower())]
        if len({e.sha256 for _, e in hits}) == 1:
            chosen.extend(hits)
        else:
            missing.append(h)
    return chosen, missing


def as_json(entry: Stored) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(entry).items()}


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
