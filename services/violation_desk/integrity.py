"""Evidence integrity: SHA-256 of every image and the camera's Ed25519 signature.

Outcome per violation: ``verified`` (signature good against a registered key, images intact),
``unverified`` (unsigned, or signed by a key the desk does not know; accepted, shown as such),
``tampered`` (a bad signature or an image that does not match its declared SHA-256; flagged).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stopline.shared.messages import Candidate


class PublicKeyError(ValueError):
    """A public key file the desk cannot use."""


@functools.lru_cache(maxsize=1024)
def _cached_key(pem: str) -> Ed25519PublicKey:
    return load_public_key(pem)


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as e:
        raise PublicKeyError(f"not a PEM public key: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise PublicKeyError(f"not an Ed25519 public key ({type(key).__name__})")
    return key


def key_id_of(key: Ed25519PublicKey) -> str:  # same convention as stopline.shared.signing.key_id
    """First 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class RegisteredKey:
    key_id: str
    pem: str


@dataclass(frozen=True)
class Verdict:
    integrity: str
    detail: str


def verify_signature(candidate: Candidate, keys: list[RegisteredKey]) -> Verdict:
    if not candidate.signature:
        return Verdict("unverified", "unsigned event")
    try:
        signature = bytes.fromhex(candidate.signature)
    except ValueError:
        return Verdict("tampered", "signature is not hex")
    message = candidate.signed_bytes()
    for k in keys:
        try:
            _cached_key(k.pem).verify(signature, message)
            return Verdict("verified", f"Ed25519 signature valid (key {k.key_id})")
        except (InvalidSignature, PublicKeyError, ValueError):
            continue
    if not keys:
        return Verdict("unverified", f"camera {candidate.camera} has no registered key")
    known_ids = {k.key_id for k in keys}
    if candidate.key_id and candidate.key_id not in known_ids:
        return Verdict("unverified", f"signed by unregistered key {candidate.key_id}")
    return Verdict("tampered", "Ed25519 signature does not match the event")


class EvidenceError(ValueError):
    """A plate result whose images cannot be used as evidence (the bus dead-letters it)."""


def undecodable(images: list[tuple[str, bytes]]) -> list[str]:
    """Names of the images whose bytes do not decode. Decoded at 1/8 scale: the whole
    compressed stream is read (a truncated or garbage JPEG fails) at a fraction of the cost."""
    return [name for name, data in images
            if not data or cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8) is None]


def combine(signature: Verdict, broken_images: list[str]) -> Verdict:
    if broken_images:
        detail = "SHA-256 mismatch: " + ", ".join(broken_images)
        if signature.integrity == "tampered":
            detail = f"{signature.detail}; {detail}"
        return Verdict("tampered", detail)
    return signature
