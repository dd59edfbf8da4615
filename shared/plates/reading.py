"""Read the plate images of one violation and vote across them (gateway side)."""

from __future__ import annotations

from stopline.shared.imaging import decode_jpeg, encode_jpeg
from stopline.shared.messages import PlateCandidates, PlateResult
from stopline.shared.plates import PlateReader, vote

CROP_NAME = "platecrop.jpg"


def read_plates(message: PlateCandidates, blobs: dict[str, bytes], reader: PlateReader,
                region: str = "auto") -> tuple[PlateResult, dict[str, bytes]]:
    reads = []
    for plate in message.plates:
        read = reader.read(decode_jpeg(blobs[plate.name]), region, plate.box)
        if read is not None and read.text:  # an unreadable plate names nobody
            read.source = plate.name
            reads.append(read)
    voted = vote(reads)
    out = dict(blobs)
    wire = None
    if voted is not None:
        best = max(reads, key=lambda r: r.confidence)
        crop_name = None
        if best.crop is not None and best.crop.size:
            out[CROP_NAME] = encode_jpeg(best.crop, 95)
            crop_name = CROP_NAME
        wire = voted.to_message(source="vote" if len(reads) > 1 else best.source, crop_name=crop_name)
    return PlateResult(candidate=message.candidate, plates=message.plates, read=wire,
                       reads=[r.to_message() for r in reads]), out
