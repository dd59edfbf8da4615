"""Plate finding (edge) and plate reading (gateway).

Edge, light (one small text-detector pass, no OCR)::

    from stopline.shared.plates import find_plates, rank_evidence, crop_plate
    plates = find_plates(image_bgr, vehicle_box=(x1, y1, x2, y2), max_plates=3)  # list[PlateBox]
    best = rank_evidence([(name, image_bgr, vehicle_box), ...], max_plates=3)    # list[EvidencePlate]
    # EvidencePlate: name, plate (PlateBox: box xyxy, score, sharpness, corners, rows),
    #                crop (plate + margin, BGR, what to send), crop_box (in the evidence image), quality

Gateway::

    from stopline.shared.plates import PlateReader, vote
    reader = PlateReader(engine="rapidocr", region="auto")       # or "us" | "eu" | "br"
    r = reader.read(image_bgr, region="auto", hint_box=None)     # PlateReadResult | None
    # r.text (A-Z0-9), r.confidence (calibrated 0..1), r.char_confidences, r.region, r.box,
    # r.corners (4x2), r.crop (rectified plate image), r.engine, r.ms
    voted, reads = reader.read_many([crop1, crop2, crop3])       # reads of one violation + vote
    voted = vote(reads)                                          # the same vote on its own
    wire = voted.to_message(source="vote")                       # shared.messages.PlateRead

Images from files or message bytes: ``load_image(path)`` / ``decode_image(bytes)`` (pixel limit,
truncated-JPEG detection; raise ``ImageError``). Localisers (``PlateLocaliser`` protocol):
``TextDetLocaliser`` (default), ``CascadeLocaliser``, ``YoloLocaliser`` (the toolchain's ONNX).
Engines (``OcrEngine`` protocol): ``rapidocr`` (default), ``onnx`` (CTC recogniser ONNX), ``easyocr``.
"""

from .engines import EngineError, OcrEngine, make_engine
from .finder import EvidencePlate, PlateFinder, crop_plate, find_plates, rank_evidence
from .formats import correct_text, normalise
from .io import ImageError, decode_image, encode_jpeg, load_image
from .localise import (CascadeLocaliser, FirstFound, PlateLocaliser, TextDetLocaliser, YoloLocaliser,
                       make_localiser)
from .reader import PlateReader
from .types import PlateBox, PlateReadResult
from .vote import vote

__all__ = [
    "CascadeLocaliser", "EngineError", "EvidencePlate", "ImageError", "OcrEngine", "PlateBox",
    "FirstFound", "PlateFinder", "PlateLocaliser", "PlateReadResult", "PlateReader", "TextDetLocaliser",
    "YoloLocaliser", "correct_text", "crop_plate", "decode_image", "encode_jpeg", "find_plates",
    "load_image", "make_engine", "make_localiser", "normalise", "rank_evidence", "vote",
]
