"""The reader on synthetic scenes: tilt, two rows, small plates, hints, format regions."""

import cv2
import numpy as np
import pytest

from stopline.shared.plates import PlateReader, vote


@pytest.mark.parametrize("angle", [0, 12, -20, 30])
def test_reads_tilted_plate(reader, synth, angle):
    render_plate, scene_with_plate = synth
    img, box = scene_with_plate(render_plate("7ABC123", 28), angle=angle, seed=angle + 100)
    r = reader.read(img, region="us")
    assert r is not None and r.text == "7ABC123"
    assert r.box[0] >= box[0] - 8 and r.box[2] <= box[2] + 8  # it is the plate it read
    assert r.crop is not None and r.crop.shape[0] > 0 and r.corners.shape == (4, 2)
    assert len(r.char_confidences) == 7 and 0 < r.confidence <= 1 and r.engine == "rapidocr"


@pytest.mark.parametrize("text", ["ABC1234", "ABC1D23"])
def test_reads_two_row_plate(reader, synth, text):
    render_plate, scene_with_plate = synth
    img, _ = scene_with_plate(render_plate(text, 26, two_rows=True), angle=5)
    r = reader.read(img, region="br")
    assert r is not None and r.text == text


def test_small_plate(reader, synth):
    render_plate, scene_with_plate = synth
    img, _ = scene_with_plate(render_plate("RK099AN", 12))
    r = reader.read(img, region="eu")
    assert r is not None and r.text == "RK099AN"


def test_plate_crop_without_localising_context(reader, synth):
    render_plate, _ = synth
    crop = render_plate("7XYZ890", 30)
    assert reader.read(crop, region="us").text == "7XYZ890"


def test_hint_box_limits_the_search(reader, synth):
    render_plate, scene_with_plate = synth
    img, box = scene_with_plate(render_plate("7ABC123", 28), at=(200, 300))
    other, _ = scene_with_plate(render_plate("8XYZ456", 28), at=(480, 120), seed=3)
    img[60:180, 380:600] = other[60:180, 380:600]
    assert reader.read(img, hint_box=box, region="us").text == "7ABC123"


def test_no_plate_in_an_empty_scene(reader):
    assert reader.read(np.full((240, 320, 3), 120, np.uint8)) is None
    assert reader.read(np.zeros((4, 4, 3), np.uint8)) is None


def test_region_format_rejects_impossible_text(reader, synth):
    render_plate, scene_with_plate = synth
    img, _ = scene_with_plate(render_plate("HELLO", 30))
    assert reader.read(img, region="br") is None          # no Brazilian layout has 5 characters
    assert reader.read(img, region="eu").text == "HELLO"  # a vanity plate is fine in the EU


def test_read_many_votes(reader, synth):
    render_plate, scene_with_plate = synth
    imgs = [scene_with_plate(render_plate("7ABC123", 28), angle=a, seed=a + 20)[0] for a in (0, 10, -10)]
    voted, reads = reader.read_many(imgs, region="us")
    assert len(reads) == 3 and voted.text == "7ABC123" and voted.source == "vote"
    assert voted.confidence >= max(r.confidence for r in reads) - 1e-9
    assert vote(reads).text == voted.text
    msg = voted.to_message()
    assert msg.text == "7ABC123" and msg.engine == "rapidocr"


def test_unknown_engine_and_region_are_errors():
    from stopline.shared.plates import EngineError

    with pytest.raises(EngineError):
        PlateReader(engine="tesseract")
    with pytest.raises(ValueError):
        PlateReader(region="xx")


def _with_sticker(plate, colours, char_h: int = 30):
    """Two stacked rings (an inspection sticker) drawn in the widest gap between the groups."""
    ink = (plate[10:-10, 8:-8].min(axis=2) < 100).any(axis=0)
    blank = np.where(~ink)[0] + 8
    gap = max(np.split(blank, np.where(np.diff(blank) > 1)[0] + 1), key=len)
    cx, cy, rad = int(gap.mean()), plate.shape[0] // 2, char_h // 5
    cv2.circle(plate, (cx, cy - rad - 1), rad, colours[0], 2, cv2.LINE_AA)
    cv2.circle(plate, (cx, cy + rad + 1), rad, colours[1], 2, cv2.LINE_AA)
    return plate


def test_coloured_sticker_between_groups_is_left_out(reader, synth):
    render_plate, scene_with_plate = synth
    red_green = _with_sticker(render_plate("4B4   0262", 30), ((40, 40, 220), (60, 170, 40)))
    img, _ = scene_with_plate(red_green)
    assert reader.read(img, region="eu").text == "4B40262"
    # the same rings in black are a glyph like any other: nothing is dropped for its position
    black = _with_sticker(render_plate("4B4   0262", 30), ((60, 60, 60), (60, 60, 60)))
    img, _ = scene_with_plate(black)
    assert reader.read(img, region="eu").text != "4B40262"


def test_separator_keeps_a_digit_group(reader, synth):
    render_plate, scene_with_plate = synth
    img, _ = scene_with_plate(render_plate("W-053011", 30))
    assert reader.read(img, region="eu").text == "W053011"


def test_plate_look_beats_bigger_lettering_on_the_paint(synth):
    """A badge bigger than the plate's characters, lettered on the car's paint, is no plate:
    the plate's row sits in a bordered rectangle."""
    from stopline.shared.plates import TextDetLocaliser

    render_plate, scene_with_plate = synth
    img, box = scene_with_plate(render_plate("7ABC123", 20), at=(320, 330))
    cv2.putText(img, "VOLVO", (215, 230), cv2.FONT_HERSHEY_DUPLEX, 1.6, (225, 225, 225), 3, cv2.LINE_AA)
    found = TextDetLocaliser().locate(img)
    assert found and found[0].box[1] >= box[1] - 6 and found[0].box[3] <= box[3] + 6, found[0].box


def test_frame_text_stacked_on_the_row_is_read_apart(synth, reader):
    """A dealer's line right above the registration (as tall, as wide) makes a 'two-row'
    candidate; each row is also read alone, so the registration is found."""
    render_plate, scene_with_plate = synth
    plate = render_plate("7ABC123", 26)
    frame = np.full((plate.shape[0] + 40, plate.shape[1], 3), 245, np.uint8)
    frame[40:] = plate
    cv2.putText(frame, "NORMREEVES", (12, 32), cv2.FONT_HERSHEY_DUPLEX, 0.95, (10, 10, 10), 2, cv2.LINE_AA)
    img, _ = scene_with_plate(frame)
    r = reader.read(img, region="us")
    assert r is not None and r.text == "7ABC123"


def test_a_piece_of_a_plate_is_no_plate(synth):
    """A first localiser whose box holds only part of the plate (a plate model's partial box):
    its short read does not end the search, and a longer read of an overlapping box wins."""
    from stopline.shared.plates import FirstFound, PlateBox, TextDetLocaliser

    render_plate, scene_with_plate = synth
    img, box = scene_with_plate(render_plate("XL XF 206", 26), at=(320, 240))

    class Partial:
        name = "partial"

        def locate(self, image, roi=None, max_plates=3):
            x1, y1, x2, y2 = box
            return [PlateBox(box=(x1 + 0.62 * (x2 - x1), y1, x2, y2), score=0.9, source="partial")]

    reader = PlateReader(localiser=FirstFound(Partial(), TextDetLocaliser()))
    r = reader.read(img, region="eu")
    assert r is not None and r.text == "XLXF206", (r.text, r.guess)


def test_colour_marks_are_looked_for_only_where_the_region_has_them(reader, synth, monkeypatch):
    from stopline.shared.plates import reader as reader_module

    calls = []
    real = reader_module.droppable_characters
    monkeypatch.setattr(reader_module, "droppable_characters", lambda crop, xs: calls.append(1) or real(crop, xs))
    render_plate, _ = synth
    crop = render_plate("7XYZ890", 30)
    assert reader.read(crop, region="us").text == "7XYZ890"
    assert not calls  # US (and BR) stickers sit off the character row: nothing to drop, nothing to compute
    assert reader.read(crop, region="eu") is not None and calls


def test_a_plate_model_box_is_read_whole(synth):
    """Inside a plate detector's box the close-up text line can lose an edge character (here the
    '2' set apart from the rest); a recogniser trained on whole plates also reads the box whole,
    and the longer read wins."""
    from stopline.shared.plates import FirstFound, PlateBox, TextDetLocaliser

    render_plate, scene_with_plate = synth
    img, box = scene_with_plate(render_plate("2  TUV867", 26), at=(320, 240))

    class PlateModel:
        name = "yolo"

        def locate(self, image, roi=None, max_plates=3):
            return [PlateBox(box=box, score=0.9, source="yolo")]

    reader = PlateReader(engine="onnx", localiser=FirstFound(PlateModel(), TextDetLocaliser()))
    r = reader.read(img, region="us")
    assert r is not None and r.text == "2TUV867", (r.text, r.guess)


def _try(text: str, raw: float, box, source: str, read: str | None = None):
    from types import SimpleNamespace

    from stopline.shared.plates import PlateBox

    return SimpleNamespace(fit=SimpleNamespace(text=text), raw=raw, read=SimpleNamespace(text=read or text),
                           plate=PlateBox(box=box, score=0.5, source=source))


def test_a_short_line_well_inside_the_plate_box_is_a_piece_of_it():
    from stopline.shared.plates.reader import _piece_of

    whole = _try("2IWV867", 0.73, (517, 262, 624, 324), "yolo")     # the plate model's box, read whole
    line = _try("TUV867", 1.0, (541, 285, 603, 311), "textdet")     # a line inside it: 58 % of its width
    assert _piece_of(line, whole)
    assert not _piece_of(whole, line)
    wide = _try("TUV867", 1.0, (522, 285, 620, 311), "textdet")     # the row spans the plate: not a piece
    assert not _piece_of(wide, whole)
    elsewhere = _try("TUV867", 1.0, (700, 285, 762, 311), "textdet")  # another text, outside the plate
    assert not _piece_of(elsewhere, whole)


def test_a_much_less_sure_longer_read_does_not_overrule_a_sure_one():
    from stopline.shared.plates.reader import _piece_of

    sure = _try("3XHK859", 1.0, (100, 100, 200, 140), "yolo")
    longer = _try("3XHK8591", 0.32, (98, 100, 206, 140), "yolo")    # the plate's frame read as a '1'
    assert not _piece_of(sure, longer)
    assert _piece_of(sure, _try("3XHK8591", 0.9, (98, 100, 206, 140), "yolo"))


def test_a_plate_crop_is_read_whole(synth):
    """An image shaped like a plate crop (a finder's crop, a tight crop) is read whole as well as
    line by line: the '2' set apart from the rest is not lost."""
    render_plate, _ = synth
    r = PlateReader(engine="onnx").read(render_plate("2  TUV867", 26), region="us")
    assert r is not None and r.text == "2TUV867", (r.text, r.guess)


def test_a_read_that_merged_a_character_loses_to_the_read_that_kept_it():
    """The unstretched crop's 'LEHY66' is the stretched crop's 'LEHY466' with the '4' merged away
    (CTC): the longer read of the same box wins when it is about as sure, even though its layout
    needed a look-alike swap (L -> 4) that lowered its score."""
    from stopline.shared.plates.reader import _piece_of

    box = (449, 301, 536, 341)
    merged = _try("LEHY66", 0.89, box, "yolo", read="LEHY66")
    kept = _try("4EHY466", 0.66, box, "yolo", read="LEHY466")
    assert _piece_of(merged, kept)
    assert not _piece_of(kept, merged)
    assert not _piece_of(merged, _try("4EHY466", 0.5, box, "yolo", read="LEHY466"))  # much less sure: no
