"""The edge finder: plate boxes in evidence frames and which frame to send."""

import cv2

from stopline.shared.plates import crop_plate, find_plates, rank_evidence


def _iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_finds_the_plate(synth):
    render_plate, scene_with_plate = synth
    img, box = scene_with_plate(render_plate("7ABC123", 24), angle=10)
    plates = find_plates(img)
    assert plates and _iou(plates[0].box, box) > 0.4
    assert plates[0].sharpness > 0 and 0 < plates[0].score <= 1 and plates[0].corners.shape == (4, 2)


def test_two_row_plate_is_one_candidate(synth):
    render_plate, scene_with_plate = synth
    img, box = scene_with_plate(render_plate("ABC1234", 24, two_rows=True))
    p = find_plates(img)[0]
    assert p.rows == 2 and _iou(p.box, box) > 0.5


def test_vehicle_box_restricts_the_search(synth):
    render_plate, scene_with_plate = synth
    img, box = scene_with_plate(render_plate("7ABC123", 24), at=(160, 300))
    other, obox = scene_with_plate(render_plate("8XYZ456", 24), at=(480, 300), seed=5)
    img[:, 330:] = other[:, 330:]
    inside = find_plates(img, vehicle_box=(330, 150, 640, 420))
    assert inside and all(p.box[0] >= 330 for p in inside)
    assert _iou(inside[0].box, obox) > 0.4


def test_no_plate_no_boxes():
    import numpy as np

    assert find_plates(np.full((240, 320, 3), 100, np.uint8)) == []


def test_rank_evidence_prefers_the_readable_frame(synth, reader):
    render_plate, scene_with_plate = synth
    sharp, _ = scene_with_plate(render_plate("7ABC123", 26), seed=1)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 2.5)
    small, _ = scene_with_plate(render_plate("7ABC123", 10), seed=2)
    ranked = rank_evidence([("blurred", blurred, None), ("small", small, None), ("sharp", sharp, None)],
                           max_plates=2)
    assert [e.name for e in ranked][0] == "sharp" and len(ranked) == 2
    best = ranked[0]
    assert best.quality > ranked[1].quality
    # what the edge sends is what the reader reads
    assert reader.read(best.crop, region="us").text == "7ABC123"
    x1, y1, x2, y2 = best.crop_box
    assert best.crop.shape[:2] == (y2 - y1, x2 - x1)


def test_crop_plate_stays_inside_the_image(synth):
    render_plate, scene_with_plate = synth
    img, _ = scene_with_plate(render_plate("7ABC123", 24), at=(60, 20))
    for p in find_plates(img):
        crop, (x1, y1, x2, y2) = crop_plate(img, p, margin=1.0)
        assert x1 >= 0 and y1 >= 0 and x2 <= img.shape[1] and y2 <= img.shape[0] and crop.size


def test_first_found_falls_back_when_the_first_localiser_finds_nothing(synth):
    from stopline.shared.plates import FirstFound, PlateFinder, TextDetLocaliser

    class Blind:
        name = "blind"

        def locate(self, image, roi=None, max_plates=3):
            return []

    render_plate, scene_with_plate = synth
    img, box = scene_with_plate(render_plate("7ABC123", 24))
    loc = FirstFound(Blind(), TextDetLocaliser())
    assert loc.name == "blind+textdet"
    plates = PlateFinder(loc).find(img)
    assert plates and _iou(plates[0].box, box) > 0.4 and plates[0].source == "textdet"


def test_plate_finder_service_uses_the_shipped_plate_model_on_a_simulated_vehicle(tmp_path):
    """The edge default: the INT8 plate detector finds the plate of a simulated vehicle."""
    from stopline.models import plate_model
    from stopline.services.plate_finder.service import build_finder
    from stopline.shared.config import PlateFinderConfig
    from stopline.sim import export_yolo

    plate_model()  # the shipped file exists
    export_yolo(tmp_path, 12, seed=4242)
    finder = build_finder(PlateFinderConfig())
    assert finder.localiser.name == "yolo+textdet"
    hits = tries = 0
    for label in sorted((tmp_path / "plates" / "labels").glob("*/*.txt")):
        img = cv2.imread(str(label).replace("/labels/", "/images/").replace(".txt", ".jpg"))
        h, w = img.shape[:2]
        for row in label.read_text().split("\n"):
            if not row.strip():
                continue
            _, cx, cy, bw, bh = map(float, row.split())
            box = ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)
            # a vehicle box around the plate, as the detector would give (plate near its bottom)
            pw, ph = box[2] - box[0], box[3] - box[1]
            vehicle = (box[0] - 2 * pw, box[1] - 6 * ph, box[2] + 2 * pw, box[3] + 1.5 * ph)
            tries += 1
            found = finder.find(img, vehicle, max_plates=1)
            hits += bool(found) and found[0].source == "yolo" and _iou(found[0].box, box) > 0.3
    assert tries >= 5, "the fresh scene should show some plates"
    print(f"plate model found {hits} of {tries}")
    assert hits / tries >= 0.6, (hits, tries)
