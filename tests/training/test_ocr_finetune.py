"""Recogniser fine-tuning data: synthetic plates, camera degradation, real crops by split."""

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("PIL")

from stopline.training.ocr_finetune import (LAYOUTS, _fonts, degrade, real_crops, rectify,  # noqa: E402
                                            synthetic_plate)
from stopline.training.real_data import plate_split  # noqa: E402


def test_synthetic_plates_have_alphanumeric_labels_and_visible_characters():
    rng = np.random.default_rng(3)
    fonts = _fonts()
    lengths = set()
    for _ in range(40):
        img, label = synthetic_plate(rng, fonts)
        assert label.isalnum() and label.upper() == label and 5 <= len(label) <= 8
        lengths.add(len(label))
        assert img.ndim == 3 and img.shape[1] > img.shape[0]
        assert img.std() > 10  # characters drawn, not a blank plate
    assert len(lengths) >= 3  # layouts of several lengths
    assert any(" " in lay or "-" in lay for lay in LAYOUTS)


def test_degrade_keeps_a_readable_sized_crop():
    rng = np.random.default_rng(5)
    img, _ = synthetic_plate(rng, _fonts())
    for _ in range(20):
        out = degrade(img, rng)
        assert out.dtype == np.uint8 and out.ndim == 3
        assert 0.8 < out.shape[1] / img.shape[1] < 1.2 and 0.7 < out.shape[0] / img.shape[0] < 1.3


def test_rectify_undoes_a_perspective_warp():
    plate = np.full((60, 200, 3), 255, np.uint8)
    cv2.putText(plate, "AB123", (10, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (0, 0, 0), 4)
    corners = np.float32([[40, 30], [250, 50], [245, 120], [35, 95]])
    m = cv2.getPerspectiveTransform(np.float32([[0, 0], [200, 0], [200, 60], [0, 60]]), corners)
    scene = cv2.warpPerspective(plate, m, (320, 180), borderValue=(128, 128, 128))
    flat = rectify(scene, corners, height=60)
    back = cv2.resize(flat, (200, 60))
    assert np.abs(back.astype(int) - plate).mean() < 25


def test_real_crops_take_only_the_split_asked_for(tmp_path):
    folder = tmp_path / "eu"
    folder.mkdir()
    for i in range(20):
        img = np.full((100, 200, 3), 200, np.uint8)
        cv2.imwrite(str(folder / f"p{i}.jpg"), img)
        (folder / f"p{i}.txt").write_text(f"p{i}.jpg\t20\t30\t80\t20\tAB{i}\n")
    train = real_crops(tmp_path, ["eu"], "train")
    assert {c.text for c in train} == {f"AB{i}" for i in range(20) if plate_split("eu", f"p{i}") == "train"}
    assert all(c.image.shape[:2] == (20, 80) for c in train)
    assert not {c.text for c in train} & {c.text for c in real_crops(tmp_path, ["eu"], "test")}


def test_learning_rate_decays_to_the_floor_over_the_run():
    from stopline.training.ocr_finetune import lr_at

    rates = [lr_at(p / 10, 1e-4, 0.1) for p in range(11)]
    assert rates[0] == pytest.approx(1e-4) and rates[-1] == pytest.approx(1e-5)
    assert all(a > b for a, b in zip(rates, rates[1:]))  # decays all the way, never climbs back
    assert lr_at(1.7, 1e-4, 0.1) == pytest.approx(1e-5)  # past the budget: stays at the floor


def test_init_names_a_missing_state_dict(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "nothing.pt"
    r = subprocess.run([sys.executable, "-m", "stopline", "models", "ocr-finetune", "--init", str(missing),
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--init" in r.stderr and "no such state dict" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_init_loads_the_state_dict_it_names(tmp_path):
    torch = pytest.importorskip("torch")
    from stopline.training.env import ToolchainError
    from stopline.training.ocr_finetune import load_init

    trained, fresh = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    torch.save(trained.state_dict(), tmp_path / "state.pt")
    load_init(fresh, tmp_path / "state.pt")
    assert torch.equal(fresh.weight, trained.weight) and torch.equal(fresh.bias, trained.bias)
    torch.save(torch.nn.Linear(5, 3).state_dict(), tmp_path / "other.pt")
    with pytest.raises(ToolchainError, match="other.pt"):
        load_init(fresh, tmp_path / "other.pt")


def test_line_crops_are_the_character_row_as_the_reader_crops_it(tmp_path):
    from stopline.training.ocr_finetune import line_crops

    folder = tmp_path / "eu"
    folder.mkdir()
    names = [f"p{i}" for i in range(40) if plate_split("eu", f"p{i}") == "train"][:2]
    for name in names:
        photo = np.full((240, 400, 3), 90, np.uint8)
        cv2.rectangle(photo, (100, 100), (300, 150), (255, 255, 255), -1)  # the plate ...
        cv2.putText(photo, "AB123", (115, 138), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (0, 0, 0), 3)  # ... its row
        cv2.putText(photo, "DEALER", (140, 170), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        cv2.imwrite(str(folder / f"{name}.jpg"), photo)
        (folder / f"{name}.txt").write_text(f"{name}.jpg\t95\t95\t210\t60\tAB123\n")
    crops = line_crops(tmp_path, ["eu"], "train")
    assert [c.text for c in crops] == ["AB123"] * 4  # each plate at the normal and the wide margin
    normal, wide = crops[0].image, crops[1].image
    assert normal.shape[0] == wide.shape[0] == 48
    assert normal.shape[1] < wide.shape[1]
    # the row only: tighter than the labelled plate box (210 x 60 -> 48 px tall would be 168 wide)
    assert normal.shape[1] > 2.5 * normal.shape[0] and normal.shape[1] / normal.shape[0] > 210 / 60
