"""Pick the evidence crops that show the most readable plate (edge side, light and fast).

The plate finder runs the light localiser over the evidence burst of a violation candidate and
forwards the best few plate regions, with a margin, to the gateway; the heavy reading happens
there. When no plate-like region is found the vehicle crop of the crossing frame is forwarded so
the gateway's stronger localiser still gets a chance.
"""

from __future__ import annotations

import logging

from stopline.shared.config import PlateFinderConfig
from stopline.shared.imaging import crop, decode_jpeg, encode_jpeg, expand_box
from stopline.shared.messages import PlateCandidates, PlateImage, ViolationCandidate, sha256_hex
from stopline.shared.plates import find_plates

log = logging.getLogger(__name__)

CROP_MARGIN = 0.35  # context around the plate so the gateway can refine its corners
ROLE_PREFERENCE = {"crossing": 1.0, "approach": 0.95, "inside": 0.85}


def choose_plates(message: ViolationCandidate, blobs: dict[str, bytes],
                  config: PlateFinderConfig) -> tuple[PlateCandidates, dict[str, bytes]]:
    cand = message.candidate
    scored = []
    images = {}
    for ev in cand.evidence:
        if ev.role not in ROLE_PREFERENCE:
            continue
        img = images[ev.name] = decode_jpeg(blobs[ev.name])
        for plate in find_plates(img, vehicle_box=ev.vehicle_box, max_plates=config.max_plates):
            if plate.sharpness < config.min_sharpness:
                continue
            # bigger, sharper, more plate-like, from the best moment of the burst
            size = min(1.0, plate.width / 120.0)
            quality = plate.score * (0.5 + 0.5 * size) * ROLE_PREFERENCE[ev.role]
            scored.append((quality, ev.name, plate))
    scored.sort(key=lambda s: -s[0])
    out_blobs = dict(blobs)
    plates: list[PlateImage] = []
    for quality, source, plate in scored[: config.max_plates]:
        img = images[source]
        region = expand_box(plate.box, img.shape, CROP_MARGIN)
        data = encode_jpeg(crop(img, region), 95)
        name = f"plate{len(plates)}.jpg"
        out_blobs[name] = data
        x0, y0 = region[0], region[1]
        box = (plate.box[0] - x0, plate.box[1] - y0, plate.box[2] - x0, plate.box[3] - y0)
        plates.append(PlateImage(name=name, source=source, box=box, score=round(quality, 4),
                                 sha256=sha256_hex(data)))
    if not plates:
        fallback = _vehicle_crop(message, images, blobs)
        if fallback is not None:
            source, data, size = fallback
            out_blobs["plate0.jpg"] = data
            plates.append(PlateImage(name="plate0.jpg", source=source, box=(0, 0, *size), score=0.0,
                                     sha256=sha256_hex(data)))
            log.info("event %s: no plate-like region; forwarding the vehicle crop", cand.event_id)
    return PlateCandidates(candidate=cand, plates=plates), out_blobs


def _vehicle_crop(message: ViolationCandidate, images, blobs):
    evidence = sorted(message.candidate.evidence, key=lambda e: -ROLE_PREFERENCE.get(e.role, 0))
    for ev in evidence:
        if ev.vehicle_box is None or ev.name not in blobs:
            continue
        img = images.get(ev.name)
        if img is None:
            img = decode_jpeg(blobs[ev.name])
        region = expand_box(ev.vehicle_box, img.shape, 0.05)
        part = crop(img, region)
        if part.size:
            return ev.name, encode_jpeg(part, 95), (float(part.shape[1]), float(part.shape[0]))
    return None
