"""Property tests of the envelope decoder and the header models: whatever the bytes, ``decode``
returns a valid message or raises ``MessageError`` (never RecursionError, ValueError, TypeError,
...), and what it returns validates again."""

from __future__ import annotations

import json
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.samples import candidate

from stopline.shared.config import HeaderLimits
from stopline.shared.messages import MAGIC, Message, MessageError, decode, encode

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

MSG, BLOBS = candidate()
VALID = encode(MSG, BLOBS)
HLEN = struct.unpack(">I", VALID[4:8])[0]
HEADER = json.loads(VALID[8 : 8 + HLEN])
BODY = VALID[8 + HLEN :]


def envelope(header: bytes, body: bytes = BODY) -> bytes:
    return MAGIC + struct.pack(">I", len(header)) + header + body


def outcome(payload: bytes) -> str:
    """'ok' or 'refused'; anything else the decoder raises fails the test."""
    try:
        env = decode(payload)
    except MessageError as e:
        assert str(e), "a refusal says why"
        return "refused"
    assert isinstance(env.message, Message)
    type(env.message).model_validate(env.message.model_dump(by_alias=True))
    for att in env.message.attachments:
        assert len(env.blobs[att.name]) == att.length
    return "ok"


def nested(depth: int, opener: str = "[", leaf: str = "1") -> bytes:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "[":
        return (opener * depth + leaf + closer * depth).encode()
    return ('{"a":' * depth + leaf + "}" * depth).encode()


json_leaves = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=50),
    st.integers(min_value=-(10**60), max_value=10**60),
)
json_values = st.recursive(json_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)), max_leaves=30)


@SETTINGS
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data):
    outcome(data)
    outcome(MAGIC + data)
    outcome(envelope(data))


@SETTINGS
@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["[", "{"]),
       st.sampled_from(["schema", "candidate", "attachments", None]))
def test_deep_nesting_anywhere(depth, opener, field):
    inner = nested(depth, opener)
    if field is None:
        outcome(envelope(inner))
    else:
        header = json.dumps({**HEADER, field: "@"}).encode().replace(b'"@"', inner)
        outcome(envelope(header))


@SETTINGS
@given(st.integers(min_value=1, max_value=20_000), st.sampled_from(["track_id", "frame_index", "crossed_at"]),
       st.sampled_from(["", "-", "0.", "1e"]))
def test_huge_numbers(digits, field, prefix):
    header = dict(HEADER, candidate={**HEADER["candidate"], field: "@"})
    raw = json.dumps(header).encode().replace(b'"@"', prefix.encode() + b"7" * digits)
    got = outcome(envelope(raw))
    if digits > HeaderLimits().max_number_digits:
        assert got == "refused"
    elif prefix in ("", "-") and digits <= 17:
        assert got == "ok"


@SETTINGS
@given(st.integers(min_value=0, max_value=300_000), st.sampled_from(["event_id", "vehicle_class", "lane"]),
       st.sampled_from(["x", "\\\"", "\\u00e9"]))
def test_huge_strings(length, field, unit):
    header = dict(HEADER, candidate={**HEADER["candidate"], field: "@"})
    raw = json.dumps(header).encode().replace(b'"@"', b'"' + unit.encode() * length + b'"')
    got = outcome(envelope(raw))
    if len(unit) * length > HeaderLimits().max_string_bytes:
        assert got == "refused"


@SETTINGS
@given(st.integers(min_value=1, max_value=20_000))
def test_huge_lists(n):
    """The same (valid) evidence item n times: fine for a few, refused once over max_items."""
    first = HEADER["candidate"]["evidence"][0]
    header = dict(HEADER, candidate={**HEADER["candidate"], "evidence": [first] * n})
    got = outcome(envelope(json.dumps(header).encode()))
    if n * (len(first) + 1) > HeaderLimits().max_items:
        assert got == "refused"
    elif n < 100:
        assert got == "ok"


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


PATHS = [p for p in _paths(HEADER) if p]


def _replace(value, path, new):
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


@SETTINGS
@given(st.sampled_from(PATHS), json_values)
def test_wrong_types_in_the_header_models(path, value):
    header = _replace(HEADER, path, value)
    outcome(envelope(json.dumps(header).encode()))


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 10**12), st.integers(0, 10**12)), min_size=1, max_size=50))
def test_attachment_ranges(ranges):
    atts = [dict(HEADER["attachments"][0], offset=o, length=n) for o, n in ranges]
    outcome(envelope(json.dumps(dict(HEADER, attachments=atts)).encode()))


def test_the_valid_message_decodes():
    assert outcome(VALID) == "ok"


def test_the_prescan_costs_little_on_a_large_evidence_message():
    """A ~2 MB message: the limit check must not noticeably slow the decoder (which hashes every
    attachment anyway)."""
    big = {k: v * 60 for k, v in BLOBS.items()}
    for ev in MSG.candidate.evidence:
        from stopline.shared.messages import sha256_hex
        ev.sha256 = sha256_hex(big[ev.name])
    payload = encode(MSG, big)
    assert len(payload) > 1_500_000
    hlen = struct.unpack(">I", payload[4:8])[0]
    from stopline.shared.header_scan import check_header

    t0 = time.perf_counter()
    for _ in range(20):
        decode(payload)
    whole = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(20):
        check_header(payload[8 : 8 + hlen], HeaderLimits())
    scan = time.perf_counter() - t0
    assert scan < 0.05 * whole, (scan, whole)


@pytest.mark.parametrize("shape", [
    b'"' + b'\\"' * 490_000,  # an unterminated string of escaped quotes: quadratic for a backtracking regex
    b'"' + b"\\" * 999_990 + b'"',
    b'[' + b'"a",' * 249_000 + b'"a"]',
    b"[" * 1_000_000,
    b"[]" * 500_000,
    b"1" * 1_000_000,
    b'"' * 1_000_000,
])
def test_the_prescan_is_linear_on_hostile_headers(shape):
    from stopline.shared.header_scan import HeaderLimitError, check_header

    t0 = time.perf_counter()
    with pytest.raises(HeaderLimitError):
        check_header(shape, HeaderLimits())
    assert time.perf_counter() - t0 < 2.0  # ~25 ms per MB on a loaded 2-core machine
    with pytest.raises(MessageError):
        decode(envelope(shape))
