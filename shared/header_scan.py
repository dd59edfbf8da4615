"""A pre-scan of a message header's raw JSON bytes against ``HeaderLimits``, before parsing.

Python's ``json`` recurses per nesting level (``RecursionError`` on deep input) and refuses
integers of more than 4300 digits with a ``ValueError``; a huge string or list costs memory and
time before any schema sees it. The scan bounds all of these with a few linear passes of bytes
methods (replace, split, translate, substring search; no per-byte Python loop and no regular
expression that could backtrack), so it costs little next to ``json.loads`` itself. It only measures: bytes that are not JSON at all are left for the parser
to refuse.
"""

from __future__ import annotations

from stopline.shared.config import HeaderLimits

_KEEP_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))  # for a substring search


class HeaderLimitError(ValueError):
    """A header over one of the limits; the text names the limit and the config field."""


def check_header(raw: bytes, limits: HeaderLimits) -> None:
    """Raise ``HeaderLimitError`` when ``raw`` is over a limit; return quietly otherwise.
    Linear in the size of ``raw`` whatever its content (no backtracking regular expression)."""
    if len(raw) > limits.max_bytes:
        raise HeaderLimitError(f"header of {len(raw)} bytes exceeds header_limits.max_bytes ({limits.max_bytes})")
    # blank out escapes (pairs from the left, as a JSON lexer reads them): every quote left
    # opens or closes a string
    plain = raw.replace(b"\\\\", b"__").replace(b'\\"', b"__")
    strings = plain.count(b'"') // 2
    if strings > limits.max_items:
        raise HeaderLimitError(f"header holds {strings} strings, over header_limits.max_items ({limits.max_items})")
    parts = plain.split(b'"')
    longest = max(map(len, parts[1::2]), default=0)
    if longest > limits.max_string_bytes:
        raise HeaderLimitError(f"a header string of {longest} bytes exceeds header_limits.max_string_bytes "
                               f"({limits.max_string_bytes})")
    outside = b"".join(parts[0::2])  # the structure, numbers and literals
    if b"0" * (limits.max_number_digits + 1) in outside.translate(_DIGITS_AS_ZERO):
        raise HeaderLimitError(f"a header number has more than header_limits.max_number_digits "
                               f"({limits.max_number_digits}) digits")
    brackets = outside.translate(None, _KEEP_BRACKETS)
    depth = 0
    for b in brackets[: 2 * limits.max_items]:  # bounded; the items check below covers the rest
        if b in b"[{":
            depth += 1
            if depth > limits.max_depth:
                raise HeaderLimitError(f"header nests more than header_limits.max_depth ({limits.max_depth}) levels")
        else:
            depth -= 1
    items = outside.count(b",") + len(brackets) // 2 + 1
    if items > limits.max_items:
        raise HeaderLimitError(f"header holds about {items} values, over header_limits.max_items ({limits.max_items})")
