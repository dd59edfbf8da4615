"""Overlays are never plates: ignore zones, text that stays put across frames, and text that does
not move with the vehicle between burst frames."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from stopline.shared.config import CameraConfig, IgnoreZone, PlateFinderConfig
from stopline.shared.plates import rank_evidence
from stopline.shared.plates.overlays import is_static, mask_zones, propose_ignore_zones, static_text

STAMP = "2025-09-25 16:15:44 CAM3"


def _frame(t: int, plate, car_y: int, stamp_at=(20, 40), car_h: int = 160,
           boxed: np.ndarray | None = None) -> tuple[np.ndarray, tuple]:
    """A grey street, a 'car' with a plate moving down the frame, a burned-in timestamp."""
    rng = np.random.default_rng(t)
    img = rng.normal(110, 8, (480, 640, 3)).clip(0, 255).astype(np.uint8)
    x0 = 220
    cv2.rectangle(img, (x0, car_y), (x0 + 240, car_y + car_h), (60, 40, 140), -1)
    ph, pw = plate.shape[:2]
    px, py = x0 + 120 - pw // 2, car_y + car_h - 50
    img[py:py + ph, px:px + pw] = plate
    if boxed is not None:  # an OSD label in a bordered box: as plate-like as a plate, and bigger
        bh, bw = boxed.shape[:2]
        img[stamp_at[1]:stamp_at[1] + bh, stamp_at[0]:stamp_at[0] + bw] = boxed
    else:
        cv2.putText(img, STAMP[:-2] + f"{t:02d}", stamp_at, cv2.FONT_HERSHEY_SIMPLEX, 0.8, (250, 250, 250), 2)
    return img, (float(x0), float(car_y), float(x0 + 240), float(car_y + car_h))


def test_static_text_finds_the_timestamp_not_the_moving_plate(synth):
    render_plate, _ = synth
    plate = render_plate("7ABC123", 20)
    frames = [_frame(t, plate, 60 + 25 * t)[0] for t in range(8)]
    zones = static_text(frames)
    assert zones, "the burned-in timestamp stays in place"
    boxes = [(min(p[0] for p in z), min(p[1] for p in z), max(p[0] for p in z), max(p[1] for p in z)) for z in zones]
    assert any(b[0] <= 25 and b[1] <= 20 and b[2] >= 300 and b[3] >= 40 for b in boxes), boxes
    assert all(b[1] > 60 or b[3] < 60 for b in boxes[1:]) or len(boxes) == 1
    assert not any(b[1] > 150 for b in boxes), "the moving plate is no overlay"
    # in the camera's own geometry (frame_size twice the frame): coordinates double
    doubled = propose_ignore_zones(frames, (1280, 960))
    assert max(p[0] for p in doubled[0]) == pytest.approx(2 * max(p[0] for p in zones[0]), abs=0.2)


def test_text_that_does_not_move_with_the_vehicle_is_no_plate(synth):
    render_plate, _ = synth
    plate = render_plate("7ABC123", 14)
    label = render_plate("CAM03", 26)
    # the camera's label sits where the car passes: inside its box in every frame of the burst
    burst = [_frame(t, plate, 40 + 60 * t, stamp_at=(250, 170), car_h=260, boxed=label) for t in range(3)]
    stamp_box = (250.0, 170.0, 250.0 + label.shape[1], 170.0 + label.shape[0])
    img, vbox = burst[1]
    others = [(im, vb) for k, (im, vb) in enumerate(burst) if k != 1]
    assert is_static(stamp_box, img, vbox, others)
    ranked = rank_evidence([(f"{k}.jpg", im, vb) for k, (im, vb) in enumerate(burst)], max_plates=3)
    assert ranked
    for e in ranked:
        plate_top = burst[int(e.name[0])][1][3] - 50
        assert abs(e.plate.box[1] - plate_top) < 20, f"{e.name}: picked {e.plate.box}, not the plate"
    # the plate itself moves with the car: not static
    plate_box = (280.0, vbox[3] - 50, 400.0, vbox[3] - 50 + plate.shape[0])
    assert not is_static(plate_box, img, vbox, others)


def test_ignore_zones_are_never_looked_in(synth):
    render_plate, scene_with_plate = synth
    img, box = scene_with_plate(render_plate("7ABC123", 28))
    zone = np.array([[box[0] - 5, box[1] - 5], [box[2] + 5, box[1] - 5], [box[2] + 5, box[3] + 5],
                     [box[0] - 5, box[3] + 5]], np.float32)
    from stopline.shared.plates import PlateReader

    reader = PlateReader(localiser="textdet")
    assert reader.read(img, region="us").text == "7ABC123"
    assert reader.read(img, region="us", ignore_zones=[zone]) is None
    assert (mask_zones(img, [zone])[int(box[1]):int(box[3]), int(box[0]):int(box[2])] == 128).all()


def test_choose_plates_paints_out_the_camera_ignore_zones(synth):
    from stopline.shared.imaging import encode_jpeg
    from stopline.shared.messages import Candidate, EvidenceImage, ViolationCandidate
    from stopline.shared.plates.choose import choose_plates

    render_plate, _ = synth
    plate = render_plate("7ABC123", 22)
    burst = [_frame(t, plate, 40 + 60 * t) for t in range(3)]
    blobs = {f"{k}.jpg": encode_jpeg(im, 95) for k, (im, _) in enumerate(burst)}
    roles = ("approach", "crossing", "inside")
    evidence = [EvidenceImage(name=f"{k}.jpg", role=roles[k], frame_index=k, captured_at=float(k), vehicle_box=vb,
                              sha256="0" * 64) for k, (_, vb) in enumerate(burst)]
    cand = Candidate.model_construct(evidence=evidence, event_id="e1", camera="cam")
    vc = ViolationCandidate.model_construct(candidate=cand)
    camera = CameraConfig(id="cam", stop_line=[(0, 300), (640, 300)], travel_direction=(0, 1),
                          signal={"mode": "constant", "constant": "red"}, frame_size=(640, 480),
                          ignore_zones=[{"polygon": [(0, 0), (640, 0), (640, 480), (0, 480)]}])
    found, _ = choose_plates(vc, blobs, PlateFinderConfig(localiser="textdet"), camera=camera)
    # the whole frame is an ignore zone: no plate, and the fallback vehicle crop is painted out too
    assert all(p.score == 0.0 for p in found.plates)


def test_ignore_zone_config_is_strict():
    with pytest.raises(ValidationError, match="polygon"):
        IgnoreZone(polygon=[(0, 0), (1, 1)])
    with pytest.raises(ValidationError, match="extra"):
        IgnoreZone(polygon=[(0, 0), (1, 0), (1, 1)], colour="red")


@pytest.mark.realdata
@pytest.mark.parametrize("clip", ["hanoi_1615.mp4", "hanoi_1630.mp4"])
def test_camera_check_proposes_the_burned_in_text(shared_data, tmp_path, clip, capsys):
    from stopline.cli import main

    video = Path(shared_data) / "video" / clip
    if not video.is_file():
        pytest.skip(f"{video} not present")
    cam = tmp_path / "cam.yaml"
    cam.write_text(f"id: hanoi\nsource: {video}\nstop_line: [[100, 300], [600, 300]]\n"
                   "travel_direction: [0, 1]\nsignal: {mode: constant, constant: red}\n")
    out = tmp_path / "check.png"
    assert main(["camera", "check", "--camera", str(cam), "--out", str(out), "--seconds", "10"]) == 0
    text = capsys.readouterr().out
    assert "ignore_zones:" in text and out.is_file()
    import yaml

    zones = yaml.safe_load(text[text.index("ignore_zones:"):].split("\nsignal over")[0])["ignore_zones"]
    # the camera name and time run along the top left of both clips
    top = [z for z in zones if max(y for _, y in z["polygon"]) < 40]
    assert top and min(x for z in top for x, _ in z["polygon"]) < 40
    assert max(x for z in top for x, _ in z["polygon"]) > 250
    CameraConfig.model_validate({**yaml.safe_load(cam.read_text()), "ignore_zones": zones})
