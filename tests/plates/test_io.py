import struct
import zlib

import cv2
import numpy as np
import pytest

from stopline.shared.plates import ImageError, decode_image, load_image


def png_bytes(w: int, h: int) -> bytes:
    ok, buf = cv2.imencode(".png", np.zeros((h, w, 3), np.uint8))
    return buf.tobytes()


def jpeg_bytes(w: int = 64, h: int = 48) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.full((h, w, 3), 200, np.uint8))
    return buf.tobytes()


def huge_png_header(w: int, h: int) -> bytes:
    """A PNG that claims w x h pixels; decoding it would allocate gigabytes."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\x00" * 64 + b"IEND\xaeB`\x82")


def test_valid_images_decode():
    assert decode_image(jpeg_bytes(64, 48)).shape == (48, 64, 3)
    assert decode_image(png_bytes(30, 20)).shape == (20, 30, 3)


def test_truncated_jpeg_is_refused():
    data = jpeg_bytes(640, 480)
    with pytest.raises(ImageError, match="truncated JPEG"):
        decode_image(data[: len(data) // 2], name="cut.jpg")


def test_truncated_png_is_refused():
    data = png_bytes(64, 64)
    with pytest.raises(ImageError, match="truncated PNG"):
        decode_image(data[:-20])


def test_non_image_is_refused():
    with pytest.raises(ImageError, match="not an image"):
        decode_image(b"%PDF-1.4 not a picture")
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"")


def test_pixel_limit_checked_before_decoding():
    with pytest.raises(ImageError, match="exceeds the limit"):
        decode_image(huge_png_header(100_000, 100_000))
    with pytest.raises(ImageError, match="exceeds the limit"):
        decode_image(jpeg_bytes(64, 48), max_pixels=1000)


def test_corrupt_body_is_refused():
    data = bytearray(jpeg_bytes(64, 48))
    data[200:260] = b"\x00" * 60  # scan data destroyed, markers intact
    try:
        img = decode_image(bytes(data))
    except ImageError:
        return
    assert img.shape == (48, 64, 3)  # libjpeg may still decode it; it must not crash


def test_load_image_errors(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)
    p = tmp_path / "ok.jpg"
    p.write_bytes(jpeg_bytes())
    assert load_image(p).shape == (48, 64, 3)
