"""Real-data datasets for the detectors: held-out split, label formats, class mapping, mixing."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from stopline.training.real_data import (build_plate_dataset, build_vehicle_dataset, camera_augment,
                                         mixed_spec, plate_split, read_plate_photos)

SHARED_PLATES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "plates"


def test_plate_split_is_stable_and_holds_out_a_fifth():
    names = [f"img{i:04d}" for i in range(2000)]
    splits = [plate_split("eu", n) for n in names]
    assert splits == [plate_split("eu", n) for n in names]  # by name only: same answer every time
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert 0.17 < share["test"] < 0.23 and 0.08 < share["val"] < 0.12
    # the region is part of the key: the same file name in another region is an independent draw
    assert [plate_split("br", n) for n in names] != splits


def _photo(folder: Path, name: str, line: str, size=(120, 200)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), np.full((*size, 3), 128, np.uint8))
    (folder / (Path(name).stem + ".txt")).write_text(line + "\n")


def test_plate_photos_read_boxes_unreadable_plates_and_the_image_named_in_the_file(tmp_path):
    _photo(tmp_path / "r", "a.jpg", "a.jpg\t10\t20\t40\t12\tAB123")
    _photo(tmp_path / "r", "b.png", "b.png\t5\t5\t0\t0\tN/A\t5,5 5,5 5,5 5,5")
    (tmp_path / "r" / "c.txt").write_text("b.png\t1\t2\t3\t4\tXYZ\n")  # a txt may name another image
    photos = {p.text: p for p in read_plate_photos(tmp_path / "r")}
    assert photos["AB123"].box == (10, 20, 40, 12) and photos["AB123"].image.name == "a.jpg"
    assert photos["N/A"].box is None
    assert photos["XYZ"].image.name == "b.png"


def test_plate_dataset_labels_the_box_and_augments_only_training_photos(tmp_path):
    for i in range(30):
        _photo(tmp_path / "src" / "eu", f"p{i}.jpg", f"p{i}.jpg\t20\t40\t100\t20\tAB{i}")
    counts = build_plate_dataset(tmp_path / "src", tmp_path / "out", ["eu"], copies=2)
    train = [p for p in (tmp_path / "out/images/train").iterdir() if "_aug" not in p.name]
    assert counts["train"] == 3 * len(train)
    assert counts["test"] == sum(plate_split("eu", f"p{i}") == "test" for i in range(30))
    label = (tmp_path / "out/labels/train" / f"{train[0].stem}.txt").read_text().split()
    assert label[0] == "0" and np.allclose([float(v) for v in label[1:]], [70 / 200, 50 / 120, 100 / 200, 20 / 120],
                                           atol=1e-5)
    assert yaml.safe_load((tmp_path / "out/data.yaml").read_text())["names"] == {0: "plate"}


def test_camera_augment_keeps_the_shape_and_changes_the_pixels():
    rng = np.random.default_rng(1)
    img = (np.random.default_rng(0).random((90, 160, 3)) * 255).astype(np.uint8)
    out = camera_augment(img, rng)
    assert out.shape == img.shape and np.abs(out.astype(int) - img).mean() > 1


def test_vehicle_dataset_maps_classes_by_name_and_unstretches_squares(tmp_path):
    src = tmp_path / "src"
    (src / "data.yaml").parent.mkdir(parents=True)
    (src / "data.yaml").write_text("names: ['car', 'green_light', 'motobike', 'stop_line']\n")
    for split, size in (("train", (64, 64)), ("valid", (54, 96))):
        (src / split / "images").mkdir(parents=True)
        (src / split / "labels").mkdir(parents=True)
        cv2.imwrite(str(src / split / "images" / "f.jpg"), np.zeros((*size, 3), np.uint8))
        (src / split / "labels" / "f.txt").write_text("0 .5 .5 .2 .2\n1 .1 .1 .05 .05\n2 .3 .3 .1 .1\n")
    counts = build_vehicle_dataset(src, tmp_path / "out")
    assert counts == {"train": 1, "val": 1}
    rows = (tmp_path / "out/labels/train/f.txt").read_text().split("\n")
    assert [r.split()[0] for r in rows if r] == ["0", "3"]  # car, motorcycle; the light is dropped
    assert cv2.imread(str(tmp_path / "out/images/train/f.jpg")).shape[:2] == (36, 64)  # 16:9 again
    assert cv2.imread(str(tmp_path / "out/images/val/f.jpg")).shape[:2] == (54, 96)  # not square: as is


def test_mixed_spec_repeats_the_real_training_set(tmp_path):
    spec = mixed_spec(tmp_path / "m.yaml", ["plate"], [(tmp_path / "sim", 1), (tmp_path / "real", 2)],
                      tmp_path / "real", tmp_path / "real")
    data = yaml.safe_load(spec.read_text())
    assert [Path(p).parent.parent.name for p in data["train"]] == ["sim", "real", "real"]
    assert data["val"].endswith("real/images/val") and data["test"].endswith("real/images/test")


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED_PLATES.is_dir(), reason="needs ../shared/data/plates")
def test_every_shared_plate_photo_parses():
    for region in ("openalpr-eu", "openalpr-br", "caltech-us"):
        photos = read_plate_photos(SHARED_PLATES / region)
        assert len(photos) > 100
        assert all(p.image.is_file() for p in photos)
