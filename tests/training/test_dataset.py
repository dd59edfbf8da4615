"""Plate-crop derivation: the plate detector's training images are the plate reader's ROIs."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from stopline.training.dataset import derive_plate_crops, read_yolo


def _yolo(cls, x1, y1, x2, y2, w, h):
    return f"{cls} {(x1 + x2) / 2 / w} {(y1 + y2) / 2 / h} {(x2 - x1) / w} {(y2 - y1) / h}"


@pytest.fixture()
def export(tmp_path: Path) -> Path:
    """A one-frame export: two vehicles, one with a visible plate; a tiny far-away vehicle."""
    w, h = 640, 360
    img = np.full((h, w, 3), 90, np.uint8)
    cv2.rectangle(img, (100, 100), (260, 220), (200, 40, 40), -1)
    cv2.rectangle(img, (160, 190), (200, 202), (250, 250, 250), -1)  # the plate
    cv2.rectangle(img, (400, 120), (520, 230), (40, 200, 40), -1)
    for split in ("train", "val", "test"):
        for task in ("vehicles", "plates"):
            (tmp_path / task / "images" / split).mkdir(parents=True)
            (tmp_path / task / "labels" / split).mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "vehicles" / "images" / "train" / "f1.jpg"), img)
    (tmp_path / "vehicles" / "labels" / "train" / "f1.txt").write_text("\n".join([
        _yolo(0, 100, 100, 260, 220, w, h), _yolo(2, 400, 120, 520, 230, w, h), _yolo(0, 10, 10, 30, 25, w, h)]))
    (tmp_path / "plates" / "labels" / "train" / "f1.txt").write_text(_yolo(0, 160, 190, 200, 202, w, h))
    return tmp_path


def test_crops_are_reader_rois_with_the_plate_in_crop_coordinates(export: Path):
    counts = derive_plate_crops(export, export / "plate-crops")
    assert counts == {"train": 2, "val": 0, "test": 0}  # the 20 px vehicle is too small to keep
    crops = sorted((export / "plate-crops" / "images" / "train").glob("*.jpg"))
    first = cv2.imread(str(crops[0]))
    # ROI: box widened 10 % a side, 15 % up and down: 160x120 box -> x 84..276, y 82..238
    assert first.shape[:2] == (156, 192)
    boxes = read_yolo(Path(str(crops[0]).replace("/images/", "/labels/")).with_suffix(".txt"), 192, 156)
    assert boxes.shape == (1, 5)
    np.testing.assert_allclose(boxes[0, 1:], [160 - 84, 190 - 82, 200 - 84, 202 - 82], atol=1.0)
    # the plate-less vehicle is a negative example: an image with an empty label file
    second = Path(str(crops[1]).replace("/images/", "/labels/")).with_suffix(".txt")
    assert second.read_text().strip() == ""
    assert (export / "plate-crops" / "data.yaml").is_file()


def test_split_limit_samples_instead_of_taking_everything(export: Path):
    counts = derive_plate_crops(export, export / "pc", limits={"train": 1, "val": 1, "test": 1})
    assert counts["train"] == 1
    assert len(list((export / "pc" / "images" / "train").glob("*.jpg"))) == 1
