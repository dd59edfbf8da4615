"""Ed25519 signatures over a violation candidate, so the desk can prove evidence is unaltered.

The camera signs ``Candidate.signed_bytes()``: the candidate header (sorted-key JSON, without
the signature) which lists every evidence image's SHA-256; changing any image, box, time or
the key id breaks the signature. ``key_id`` is the first 16 hex digits of the SHA-256 of the
raw public key, so the desk can pick the right camera key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from stopline.shared.messages import Candidate


class SigningError(Exception):
    """A key file that cannot be used; the text names the file."""


def generate_key(path: str | os.PathLike[str], *, overwrite: bool = False) -> Ed25519PrivateKey:
    """Create a new private key as PEM (mode 0600) and its public key beside it (``.pub.pem``)."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise SigningError(f"{p}: already exists; refusing to overwrite a camera key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    p.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public_key_path(p).write_bytes(public_pem(key.public_key()))
    return key


def public_key_path(private_path: str | os.PathLike[str]) -> Path:
    p = Path(private_path)
    return p.with_name(p.stem + ".pub.pem")


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    p = Path(path)
    try:
        key = serialization.load_pem_private_key(p.read_bytes(), password=None)
    except FileNotFoundError:
        raise SigningError(f"{p}: signing key not found (create one: stopline camera keygen --out {p})") from None
    except (ValueError, TypeError) as e:
        raise SigningError(f"{p}: not an unencrypted PEM private key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(f"{p}: not an Ed25519 key")
    return key


def public_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_candidate(candidate: Candidate, key: Ed25519PrivateKey) -> Candidate:
    """A copy of ``candidate`` with ``key_id`` set and ``signature`` over its signed bytes."""
    signed = candidate.model_copy(update={"key_id": key_id(key), "signature": None})
    return signed.model_copy(update={"signature": key.sign(signed.signed_bytes()).hex()})


def verify_candidate(candidate: Candidate, public_key_pem: bytes | str) -> bool:
    """True when the signature is valid for this key and the key id matches; False otherwise."""
    if not candidate.signature:
        return False
    try:
        pub = serialization.load_pem_public_key(
            public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem)
    except ValueError:
        return False
    if not isinstance(pub, Ed25519PublicKey):
        return False
    if candidate.key_id is not None and candidate.key_id != key_id(pub):
        return False
    try:
        pub.verify(bytes.fromhex(candidate.signature), candidate.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True
