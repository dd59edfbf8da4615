"""``Desk``: the database, the evidence store and the settings one desk process works with."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from stopline.shared.config import SiteConfig
from stopline.shared.messages import ViolationStatus

from . import db
from .store import EvidenceStore

log = logging.getLogger(__name__)

StatusListener = Callable[[ViolationStatus], None]


class Desk:
    def __init__(
        self,
        database_url: str,
        evidence_dir: str | Path,
        *,
        site: str = "",
        auto_assign_confidence: float = 0.9,
        claim_ttl_s: float = 600.0,
        retention_days: int | None = None,
        durable_evidence: bool = True,
        pool_size: int = 5,
    ):
        self.database_url = db.normalise_url(database_url)
        self.engine = db.make_engine(self.database_url, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, info={"desk": self})
        self.store = EvidenceStore(evidence_dir, durable=durable_evidence)
        self.site = site
        self.auto_assign_confidence = auto_assign_confidence
        self.claim_ttl_s = claim_ttl_s
        self.retention_days = retention_days
        self._listeners: list[StatusListener] = []

    @classmethod
    def from_site(cls, site: SiteConfig, **overrides) -> "Desk":
        cfg = site.services.violation_desk
        evidence = Path(cfg.evidence_dir)
        if not evidence.is_absolute():
            evidence = Path(site.state_dir) / evidence
        kwargs = dict(site=site.site, auto_assign_confidence=cfg.auto_assign_confidence,
                      retention_days=cfg.retention_days)
        kwargs.update(overrides)
        return cls(site.database.url, evidence, **kwargs)

    def session(self) -> Session:
        return self.sessions()

    def upgrade(self) -> None:
        db.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # status notifications (the service publishes them on MQTT)

    def on_status(self, listener: StatusListener) -> None:
        self._listeners.append(listener)

    def notify(self, event_id: str, camera: str, status: str) -> None:
        msg = ViolationStatus(event_id=event_id, camera=camera, status=status)  # type: ignore[arg-type]
        for listener in self._listeners:
            try:
                listener(msg)
            except Exception:  # a notification must never undo a committed decision
                log.exception("status listener failed for %s", event_id)


def desk_of(session: Session) -> Desk:
    desk = session.info.get("desk")
    if not isinstance(desk, Desk):
        raise TypeError("session was not made by Desk.session()")
    return desk
