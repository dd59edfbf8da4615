"""Poison payloads: messages that once made a consumer fail without an outcome, and the other
malformed kinds (for the bus tests and tests/faults/test_poison_*.py)."""

from __future__ import annotations

import json
import struct

from stopline.shared.messages import MAGIC, Message, encode


def envelope(header: bytes, body: bytes = b"") -> bytes:
    return MAGIC + struct.pack(">I", len(header)) + header + body


def _header(payload: bytes) -> tuple[dict, bytes]:
    hlen = struct.unpack(">I", payload[4:8])[0]
    return json.loads(payload[8 : 8 + hlen]), payload[8 + hlen :]


def with_raw(message: Message, blobs: dict[str, bytes], path: tuple, raw: bytes) -> bytes:
    """The message with the JSON value at ``path`` replaced by the raw bytes ``raw``."""
    header, body = _header(encode(message, blobs))
    node = header
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "@@POISON@@"
    return envelope(json.dumps(header).encode().replace(b'"@@POISON@@"', raw), body)


def deep_lists(depth: int = 100_000) -> bytes:
    return envelope(b"[" * depth + b"]" * depth)


def poison_kinds(message: Message, blobs: dict[str, bytes]) -> list[tuple[str, bytes]]:
    """(name, payload) of each poison kind, built from a valid message of the consumer's kind."""
    return [
        ("deep lists", deep_lists()),
        ("deep objects", envelope(b'{"a":' * 50_000 + b"1" + b"}" * 50_000)),
        ("deep in a field", with_raw(message, blobs, ("candidate", "lane"), b"[" * 100_000 + b"]" * 100_000)),
        ("5000-digit integer", with_raw(message, blobs, ("candidate", "track_id"), b"7" * 5000)),
        ("5000-digit negative", with_raw(message, blobs, ("candidate", "frame_index"), b"-" + b"9" * 5000)),
        ("huge exponent", with_raw(message, blobs, ("candidate", "crossed_at"), b"1e999999")),
        ("string of 1 MB", with_raw(message, blobs, ("candidate", "vehicle_class"), b'"' + b"x" * 900_000 + b'"')),
        ("100k-item list", with_raw(message, blobs, ("candidate", "evidence"), b"[" + b",".join([b"0"] * 100_000) + b"]")),
        ("empty", b""),
        ("random bytes", bytes(range(256)) * 4),
        ("not JSON", envelope(b"{not json")),
        ("bad header length", MAGIC + b"\xff\xff\xff\xff" + b"{}"),
    ]


def poison_stream(message: Message, blobs: dict[str, bytes], n: int = 25) -> list[tuple[str, bytes]]:
    kinds = poison_kinds(message, blobs)
    return [kinds[i % len(kinds)] for i in range(n)]
