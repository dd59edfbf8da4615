"""The YOLO export and the ``stopline sim`` command."""

from __future__ import annotations

from pathlib import Path

import yaml

from stopline.cli import main
from stopline.sim.yolo import scene_specs


def _labels(root: Path) -> list[list[float]]:
    rows = []
    for f in root.glob("labels/*/*.txt"):
        for line in f.read_text().splitlines():
            rows.append([float(x) for x in line.split()])
    return rows


def test_export_yolo(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    assert main(["sim", "--export-yolo", str(out), "--frames", "10", "--seed", "3", "--size", "640x360"]) == 0
    for task, names in (("vehicles", ["car", "truck", "bus", "motorcycle"]), ("plates", ["plate"])):
        data = yaml.safe_load((out / task / "data.yaml").read_text())
        assert list(data["names"].values()) == names
        images = sorted((out / task / "images").glob("*/*.jpg"))
        assert len(images) == 10
        for img in images:
            assert (out / task / "labels" / img.parent.name / (img.stem + ".txt")).is_file()
        rows = _labels(out / task)
        assert rows, f"no {task} labels"
        for cls, cx, cy, w, h in rows:
            assert 0 <= cls < len(names) and 0 < w <= 1 and 0 < h <= 1 and 0 <= cx <= 1 and 0 <= cy <= 1
    assert "wrote 10 images" in capsys.readouterr().out


def test_export_splits_by_scene_and_seed() -> None:
    a = scene_specs(1000, seed=1, size=(640, 360))
    assert a == scene_specs(1000, seed=1, size=(640, 360))
    splits = [s for _, s, _ in a]
    assert {"train", "val", "test"} == set(splits) and splits.count("train") > splits.count("val")
    assert sum(n for *_, n in a) == 1000
    assert {sp.lighting for sp, _, _ in a} == {"day", "dusk", "night"}
    assert scene_specs(1000, seed=2, size=(640, 360)) != a


def test_sim_cli(tmp_path: Path, capsys) -> None:
    out = tmp_path / "s"
    rc = main(["sim", "--seed", "2", "--duration", "2", "--size", "320x180", "--night", "--out", str(out)])
    assert rc == 0
    for name in ("video.mp4", "truth.json", "camera.yaml", "registry.csv"):
        assert (out / name).is_file()
    assert not (out / "preview.png").exists()
    assert main(["sim", "--size", "12x", "--out", str(out)]) == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
    assert main(["sim", "--lanes", "9", "--out", str(out)]) == 2
    a_file = tmp_path / "taken"
    a_file.write_text("keep me")
    assert main(["sim", "--duration", "1", "--out", str(a_file)]) == 2
    assert a_file.read_text() == "keep me"
