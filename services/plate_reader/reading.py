"""Read the plate images of one violation and vote across them (gateway side)."""

from __future__ import annotations

from stopline.shared.imaging import decode_jpeg, encode_jpeg
from stopline.shared.messages import PlateCandidates, PlateResult
from stopline.shared.plates import PlateReader, vote

CROP_NAME = "platecrop.jpg"


def read_plates(message: PlateCandidates, blobs: dict[str, bytes], reader: PlateReader,
                region: str = "auto") -> tuple[PlateResult, dict[str, bytes]]:
    results = []
    for plate in message.plates:
        img = decode_jpeg(blobs[plate.name])
        result = reader.read(img, region=region, hint_box=plate.box)
        if result is not None:
            result.source = plate.name
            results.append(result)
    out = dict(blobs)
    voted = None
    if results:
        voted = vote(results)
        best = max(results, key=lambda r: r.confidence)
        crop_name = None
        if best.crop is not None and best.crop.size:
            out[CROP_NAME] = encode_jpeg(best.crop, 95)
            crop_name = CROP_NAME
        voted = voted.to_message(source="vote" if len(results) > 1 else best.source, crop_name=crop_name)
    reads = [r.to_message() for r in results]
    return PlateResult(candidate=message.candidate, plates=message.plates, read=voted, reads=reads), out
