"""Cameras and their registered Ed25519 public keys."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .desk import Desk
from .integrity import PublicKeyError, key_id_of, load_public_key
from .models import Camera, CameraKey, User

_CAMERA_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CameraError(ValueError):
    """A camera registration that cannot be carried out."""


def add_camera(target: Desk | Session, camera_id: str, public_key_pem: str | bytes | Path | None = None,
               name: str = "", *, actor: User | None = None) -> str | None:
    """Register a camera (and its public key, if given); returns the key id."""
    if isinstance(target, Desk):
        with target.session() as s, s.begin():
            return add_camera(s, camera_id, public_key_pem, name, actor=actor)
    s = target
    if not _CAMERA_ID.match(camera_id):
        raise CameraError("camera id: 1-64 letters, digits, _ or -")
    pem: str | None = None
    if isinstance(public_key_pem, Path):
        try:
            pem = public_key_pem.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as e:
            raise CameraError(f"{public_key_pem}: cannot read: {e}") from None
    elif isinstance(public_key_pem, bytes):
        pem = public_key_pem.decode("ascii", "replace")
    else:
        pem = public_key_pem
    camera = s.get(Camera, camera_id)
    if camera is None:
        camera = Camera(id=camera_id, name=name)
        s.add(camera)
        s.flush()
        audit.record(s, actor, "camera.add", "camera", camera_id, None, {"name": name})
    elif name and camera.name != name:
        audit.record(s, actor, "camera.rename", "camera", camera_id, {"name": camera.name}, {"name": name})
        camera.name = name
    if pem is None:
        return None
    try:
        key_id = key_id_of(load_public_key(pem))
    except PublicKeyError as e:
        raise CameraError(str(e)) from None
    existing = s.scalar(select(CameraKey).where(CameraKey.key_id == key_id))
    if existing is not None:
        if existing.camera_id != camera_id:
            raise CameraError(f"key {key_id} is already registered to camera {existing.camera_id}")
        return key_id
    s.add(CameraKey(camera_id=camera_id, key_id=key_id, public_key_pem=pem))
    audit.record(s, actor, "camera.key_add", "camera", camera_id, None, {"key_id": key_id})
    return key_id
