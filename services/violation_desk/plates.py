"""Plate text normalisation and the "one OCR confusion or one edit" relation."""

from __future__ import annotations

import re
import unicodedata

_NOT_ALNUM = re.compile(r"[^A-Z0-9]")

# Characters an OCR engine mixes up on plates; a substitution inside one group is a confusion.
CONFUSION_GROUPS = ("0ODQ", "1IL", "2Z", "5S", "6G", "8B", "4A", "7T", "UV", "MN")
_GROUP_OF = {c: g for g in CONFUSION_GROUPS for c in g}

MAX_PLATE = 16


def normalise_plate(text: str) -> str:
    """Upper-case letters and digits only: ``"ab-123 c"`` -> ``"AB123C"``; accents are dropped."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    return _NOT_ALNUM.sub("", folded)[:MAX_PLATE]


_SEPARATORS = " .-"


def plate_from_reviewer(text: str) -> str:
    """The normalised plate a reviewer typed, or ValueError saying why it is not one: letters and
    digits (spaces, dots and hyphens between them are ignored), 2-16 of them. Nothing is cut off
    or stripped silently."""
    raw = text.strip()
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    if not raw:
        raise ValueError("type the plate as it is written on the vehicle")
    if not all(c.isalnum() or c in _SEPARATORS for c in raw):
        raise ValueError(f"{shown!r} is not a plate: use letters and digits (spaces, dots and hyphens allowed)")
    folded = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode().upper()
    norm = _NOT_ALNUM.sub("", folded)
    if len(norm) != sum(c.isalnum() for c in raw):
        raise ValueError(f"{shown!r} has characters that cannot be matched against the registry")
    if not 2 <= len(norm) <= MAX_PLATE:
        raise ValueError(f"a plate has 2-{MAX_PLATE} letters or digits; {shown!r} has {len(norm)}")
    return norm


def deletion_keys(plate: str) -> set[str]:
    """The plate and each of its one-character deletions (the symmetric-delete index keys)."""
    keys = {plate}
    for i in range(len(plate)):
        keys.add(plate[:i] + plate[i + 1 :])
    keys.discard("")
    return keys


def is_confusion(a: str, b: str) -> bool:
    return a != b and a in _GROUP_OF and _GROUP_OF[a] == _GROUP_OF.get(b)


def relation(read: str, registered: str) -> str | None:
    """``exact``, ``confusion`` (one confusable substitution), ``edit`` (any one insertion,
    deletion or substitution), or None when further apart."""
    if read == registered:
        return "exact"
    la, lb = len(read), len(registered)
    if la == lb:
        diffs = [i for i in range(la) if read[i] != registered[i]]
        if len(diffs) != 1:
            return None
        i = diffs[0]
        return "confusion" if is_confusion(read[i], registered[i]) else "edit"
    if abs(la - lb) != 1:
        return None
    short, long_ = (read, registered) if la < lb else (registered, read)
    for i in range(len(long_)):
        if long_[:i] + long_[i + 1 :] == short:
            return "edit"
    return None
