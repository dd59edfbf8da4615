"""Safe image loading: a pixel limit checked from the header before decoding, truncated JPEG/PNG
detection, and one exception type with a message a person can act on."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

MAX_PIXELS = 40_000_000   # 40 MP: bigger than any camera we support, far below a decompression bomb
MAX_FILE_BYTES = 64 * 1024 * 1024


class ImageError(ValueError):
    """The file or bytes cannot be used as an image; the text says why."""


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) from a JPEG/PNG/BMP/WebP header without decoding; None if unknown."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return "png", w, h
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return "bmp", abs(w), abs(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", 0, 0
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                i += 1
                continue
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            (seg,) = struct.unpack(">H", data[i + 2:i + 4])
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5:i + 9])
                return "jpeg", w, h
            i += 2 + seg
        return "jpeg", 0, 0
    return None


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS, name: str = "image") -> np.ndarray:
    """Decode image bytes to BGR, refusing non-images, truncated files and enormous images."""
    if not data:
        raise ImageError(f"{name}: empty file")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(f"{name}: file of {len(data)} bytes exceeds the limit of {MAX_FILE_BYTES}")
    info = image_size(data)
    if info is None:
        raise ImageError(f"{name}: not an image (JPEG, PNG, BMP or WebP expected)")
    fmt, w, h = info
    if w * h > max_pixels:
        raise ImageError(f"{name}: {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels}")
    if fmt == "jpeg" and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        # libjpeg fills a cut-off scan with grey and only warns; a cut evidence image is damaged.
        # Scan data byte-stuffs 0xFF, so the end-of-image marker must follow the last scan header
        # (an EXIF thumbnail's own marker sits before it).
        raise ImageError(f"{name}: truncated JPEG (no end-of-image marker)")
    if fmt == "png" and b"IEND" not in data[-32:]:
        raise ImageError(f"{name}: truncated PNG (no IEND chunk)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageError(f"{name}: corrupt {fmt.upper()} (cannot be decoded)")
    if img.shape[0] * img.shape[1] > max_pixels:
        raise ImageError(f"{name}: {img.shape[1]}x{img.shape[0]} pixels exceeds the limit of {max_pixels}")
    return img


def load_image(path: Path | str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read and decode an image file (see ``decode_image``); ImageError on any problem."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ImageError(f"{p}: file of {size} bytes exceeds the limit of {MAX_FILE_BYTES}")
        data = p.read_bytes()
    except IsADirectoryError:
        raise ImageError(f"{p}: is a directory") from None
    except FileNotFoundError:
        raise ImageError(f"{p}: no such file") from None
    except PermissionError:
        raise ImageError(f"{p}: permission denied") from None
    except OSError as e:
        raise ImageError(f"{p}: cannot read ({e.strerror or e})") from None
    return decode_image(data, max_pixels, str(p))


def encode_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError("cannot encode JPEG")
    return buf.tobytes()
