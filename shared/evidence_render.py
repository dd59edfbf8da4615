"""The annotated copy of an evidence image: the offender's box, the stop line, the signal heads
with their state, and a data bar under the picture (UTC time to the millisecond, site, camera,
lane, signal phase, time into red, the amber before it, speed, event id).

Rendered from the signed data (the candidate header: boxes, stop line, times), never from
anything a reviewer typed, and drawn on a copy: the original image and its SHA-256 are not
touched. The desk renders it on request; the PDF record embeds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import cv2
import numpy as np

from stopline.shared.imaging import decode_jpeg, encode_jpeg

OFFENDER = (0, 0, 255)  # BGR
STOP_LINE = (255, 255, 0)
PHASE_BGR = {"red": (40, 40, 255), "amber": (0, 190, 255), "green": (80, 220, 60)}
BAR_BG = (20, 20, 20)
MIN_WIDTH = 720  # small crops get a canvas this wide, so their data bar stays legible
FULL_FRAMES = ("approach", "crossing", "inside")


def utc_ms(ts: float | None) -> str:
    if ts is None:
        return "time unknown"
    return datetime.fromtimestamp(float(ts), timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _num(v: Any, fmt: str, unit: str, missing: str = "not measured") -> str:
    return missing if v is None else f"{format(float(v), fmt)} {unit}"


def data_bar_lines(image: Mapping[str, Any], candidate: Mapping[str, Any], label: str = "") -> list[str]:
    """The data bar's text for one image of a violation."""
    phase = (image.get("signal_state") or candidate.get("signal_phase") or "unknown").upper()
    into = candidate.get("time_into_red_s")
    crossed, captured = candidate.get("crossed_at"), image.get("captured_at")
    if into is not None and crossed is not None and captured is not None:
        here = float(into) + float(captured) - float(crossed)
        red = f"{here:.2f} s into red" if here >= 0 else f"red in {-here:.2f} s"
        red += f" ({float(into):.2f} s at the line)"
    else:
        red = "time into red unknown"
    lines = [
        " | ".join([utc_ms(captured), f"site {candidate.get('site', '?')}", f"camera {candidate.get('camera', '?')}",
                    f"lane {candidate.get('lane') or '?'}"]),
        " | ".join([f"signal {phase}", red, "amber " + _num(candidate.get("amber_s"), ".2f", "s"),
                    "speed " + _num(candidate.get("speed_px_s"), ".0f", "px/s", "unknown")]),
        " | ".join(x for x in [f"event {candidate.get('event_id', '?')}", label] if x),
    ]
    if candidate.get("not_enforceable"):
        lines.append(f"NOT ENFORCEABLE: {candidate['not_enforceable']}")
    return lines


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour, thick: int = 1) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thick, cv2.LINE_AA)


def _label(img: np.ndarray, text: str, x: int, y: int, scale: float, colour) -> None:
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    y = max(th + 4, y)
    cv2.rectangle(img, (x, y - th - 4), (x + tw + 6, y + base - 2), colour, -1)
    cv2.putText(img, text, (x + 3, y - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def draw_marks(img: np.ndarray, image: Mapping[str, Any], stop_line: Sequence[Sequence[float]] | None) -> None:
    """Offender box, stop line and signal heads, in place, on a full evidence frame."""
    w = img.shape[1]
    thick = max(2, w // 450)
    scale = max(0.45, w / 2400)
    if stop_line and len(stop_line) >= 2:
        pts = np.array([[int(x), int(y)] for x, y in stop_line], np.int32)
        cv2.polylines(img, [pts], False, STOP_LINE, thick, cv2.LINE_AA)
        _label(img, "STOP LINE", int(pts[0][0]) + 4, int(pts[0][1]) - 6, scale, (150, 150, 0))
    sb = image.get("signal_box")
    if sb:
        state = image.get("signal_state") or "unknown"
        colour = PHASE_BGR.get(state, (160, 160, 160))
        x1, y1, x2, y2 = (int(v) for v in sb)
        cv2.rectangle(img, (x1 - 3, y1 - 3), (x2 + 3, y2 + 3), colour, thick)
        text = f"SIGNAL {state.upper()}"
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        _label(img, text, max(0, min(x1, w - tw - 8)), y2 + 22, scale, colour)
    vb = image.get("vehicle_box")
    if vb:
        x1, y1, x2, y2 = (int(v) for v in vb)
        cv2.rectangle(img, (x1, y1), (x2, y2), OFFENDER, thick + 1)
        _label(img, "OFFENDER", x1, y1 - 4, scale, OFFENDER)


def render_annotated(data: bytes, image: Mapping[str, Any], candidate: Mapping[str, Any], label: str = "",
                     quality: int = 90) -> bytes:
    """The annotated copy (JPEG) of one evidence image; ``image`` is its signed metadata
    (role, captured_at, vehicle_box, signal_box, signal_state), ``candidate`` the signed header."""
    img = decode_jpeg(data)
    if image.get("role") in FULL_FRAMES:
        draw_marks(img, image, candidate.get("stop_line"))
    lines = data_bar_lines(image, candidate, label)
    h, w = img.shape[:2]
    width = w if image.get("role") in FULL_FRAMES and w >= 480 else max(w, MIN_WIDTH)
    # as large as the widest line allows (at most 1/1600 of the width per unit)
    widest = max(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)[0][0] for line in lines)
    scale = min(width / 1600 * 1.25, (width - 16) / widest)
    (_, th), _ = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    line_h = th + max(8, th // 2)
    bar = int(line_h * len(lines) + line_h * 0.6)
    canvas = np.empty((h + bar, width, 3), np.uint8)
    canvas[:h, :w] = img  # same pixel coordinates as the original
    canvas[:h, w:] = BAR_BG
    canvas[h:] = BAR_BG
    for k, line in enumerate(lines):
        colour = (120, 120, 255) if line.startswith("NOT ENFORCEABLE") else (255, 255, 255)
        _text(canvas, line, (8, h + line_h * (k + 1)), scale, colour, max(1, int(scale * 1.6)))
    return encode_jpeg(canvas, quality)
