"""Standard passenger-plate serial layouts of the 50 US states and DC (``L`` letter, ``D`` digit;
separators left out), as listed in "United States license plate designs and serial formats"
(Wikipedia, current and recent standard issues). Vanity and specialty plates (any 2-8 letters and
digits) are the region's generic layouts in ``formats.py``.

Only the serial is a plate's text: the state name, slogan, county name, registration stickers and
the dealer's frame are never part of it (the reader reads the tallest character row and drops
edge characters read on stickers).
"""

from __future__ import annotations

STATE_LAYOUTS: dict[str, tuple[str, ...]] = {
    "AL": ("DLLDDDD", "DDLLDDD"),
    "AK": ("LLLDDD", "DDDLLL"),
    "AZ": ("LLLDDDD", "LLLDDD"),
    "AR": ("DDDLLL", "LLLDDD"),
    "CA": ("DLLLDDD",),
    "CO": ("DDDLLL", "LLLDDD", "LLLLDD", "LLLDLD"),
    "CT": ("DDDLLL", "LLDDDDD", "DLLDDD", "LLDDDDL"),
    "DE": ("DDDDDD", "DDDDDDD"),
    "DC": ("LLDDDD",),
    "FL": ("LLLLDD", "DDDLLL", "LDDDLL", "DDDDLL", "LLLDDD"),
    "GA": ("LLLDDDD", "DDDLLLL"),
    "HI": ("LLLDDD",),
    "ID": ("LDDDDDD", "DLDDDDD", "DLLDDDD", "DLLLDDD", "DLDDDDL", "DDLDDDD"),
    "IL": ("LLDDDDD", "LLDDDDD", "DDDDDDD"),
    "IN": ("DDDL", "DDDLL", "DDDLLL", "DDLLDDD"),
    "IA": ("LLLDDD", "DDDLLL"),
    "KS": ("DDDLLL",),
    "KY": ("DDDLLL", "LLLDDD"),
    "LA": ("DDDLLL", "LLLDDD"),
    "ME": ("DDDDLL", "DDDLLD"),
    "MD": ("DLLDDDD", "DLLLDD"),
    "MA": ("DLLLDD", "DLLDDD", "DDDLLD", "DDLLDD"),
    "MI": ("DDDLLL", "DLLLDD", "LLLDDDD", "LLLDDD"),
    "MN": ("DDDLLL", "LLLDDD"),
    "MS": ("LLLDDD", "LLLDDDD"),
    "MO": ("LLDLDL", "LLDDLL"),
    "MT": ("DDDDDDL", "DDDDDDDL"),
    "NE": ("LLLDDD", "DLDDDD", "DDLDDD", "DDLLDD"),
    "NV": ("DDLDDD", "DLDDDD", "DDDLLL"),
    "NH": ("DDDDDDD", "DDDDDD"),
    "NJ": ("LDDLLL", "LLLDDL"),
    "NM": ("DDDLLL", "LLLDDD", "LLLDDDD"),
    "NY": ("LLLDDDD",),
    "NC": ("LLLDDDD", "DDDLLLL"),
    "ND": ("DDDLLL",),
    "OH": ("LLLDDDD",),
    "OK": ("LLLDDD", "DDDLLL"),
    "OR": ("DDDLLL", "LLLDDD"),
    "PA": ("LLLDDDD",),
    "RI": ("DDDDDD", "LLDDD", "DDDDDDD"),
    "SC": ("DDDLLL", "LLLDDD"),
    "SD": ("DLLDDD", "DLLLDD", "DDLDDD", "DDLLDD"),
    "TN": ("LDDDDL", "DLLDDD", "LLLDDDD"),
    "TX": ("LLLDDDD", "LLDLDDD", "DLLDDDD"),
    "UT": ("LDDDLL", "DDDLLL"),
    "VT": ("LLLDDD", "DDLLD", "DLLDD", "DDDLD"),
    "VA": ("LLLDDDD",),
    "WA": ("LLLDDDD", "DDDLLL"),
    "WV": ("DLLDDD", "LLLDDD"),
    "WI": ("LLLDDDD", "DDDLLL"),
    "WY": ("DDDDDD", "DDDDDDD", "DDDDDL"),
}

# how many states issue each layout (common layouts are preferred when a read fits several)
LAYOUT_STATES: dict[str, list[str]] = {}
for _state, _layouts in STATE_LAYOUTS.items():
    for _layout in dict.fromkeys(_layouts):
        LAYOUT_STATES.setdefault(_layout, []).append(_state)
