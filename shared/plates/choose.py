"""Pick the evidence crops that show the most readable plate (edge side, light and fast).

The plate finder runs the light localiser over the evidence burst of a violation candidate and
forwards the best few plate crops (with a margin) to the gateway; the heavy reading happens
there. When no plate-like region is found the vehicle crop of the crossing frame is forwarded so
the gateway's stronger localiser still gets a chance.
"""

from __future__ import annotations

import logging

from stopline.shared.config import CameraConfig, PlateFinderConfig
from stopline.shared.imaging import crop, decode_jpeg, encode_jpeg, expand_box
from stopline.shared.messages import PlateCandidates, PlateImage, ViolationCandidate, sha256_hex
from stopline.shared.plates import PlateFinder, rank_evidence
from stopline.shared.plates.overlays import mask_zones, scaled_zones

log = logging.getLogger(__name__)

EVIDENCE_ROLES = ("crossing", "approach", "inside")  # the fallback prefers them in this order


def choose_plates(message: ViolationCandidate, blobs: dict[str, bytes], config: PlateFinderConfig,
                  finder: PlateFinder | None = None, camera: CameraConfig | None = None
                  ) -> tuple[PlateCandidates, dict[str, bytes]]:
    """``camera``: its ``ignore_zones`` (overlay text) are painted out of every evidence image
    before looking, so neither the finder nor, through the crops it sends, the reader sees them."""
    cand = message.candidate
    evidence = [e for e in cand.evidence if e.role in EVIDENCE_ROLES]
    zones = [z.polygon for z in camera.ignore_zones] if camera is not None else []
    frame_size = camera.frame_size if camera is not None else None
    images = {e.name: decode_jpeg(blobs[e.name]) for e in evidence}
    images = {k: mask_zones(v, scaled_zones(zones, v.shape, frame_size)) for k, v in images.items()}
    ranked = rank_evidence([(e.name, images[e.name], e.vehicle_box) for e in evidence],
                           max_plates=config.max_plates, min_sharpness=config.min_sharpness, finder=finder)
    out_blobs = dict(blobs)
    plates: list[PlateImage] = []
    for chosen in ranked:
        data = encode_jpeg(chosen.crop, 95)
        name = f"plate{len(plates)}.jpg"
        out_blobs[name] = data
        x0, y0 = chosen.crop_box[0], chosen.crop_box[1]
        b = chosen.plate.box
        plates.append(PlateImage(name=name, source=chosen.name, box=(b[0] - x0, b[1] - y0, b[2] - x0, b[3] - y0),
                                 score=round(float(chosen.quality), 4), sha256=sha256_hex(data)))
    if not plates:
        for role in EVIDENCE_ROLES:
            ev = next((e for e in evidence if e.role == role and e.vehicle_box is not None), None)
            if ev is None:
                continue
            img = images[ev.name]
            part = crop(img, expand_box(ev.vehicle_box, img.shape, 0.05))
            if not part.size:
                continue
            data = encode_jpeg(part, 95)
            out_blobs["plate0.jpg"] = data
            plates.append(PlateImage(name="plate0.jpg", source=ev.name,
                                     box=(0.0, 0.0, float(part.shape[1]), float(part.shape[0])),
                                     score=0.0, sha256=sha256_hex(data)))
            log.info("event %s: no plate-like region; forwarding the vehicle crop", cand.event_id)
            break
    return PlateCandidates(candidate=cand, plates=plates), out_blobs
