import json

import cv2
import numpy as np

from stopline.cli import main


def _write(tmp_path, synth):
    render_plate, scene_with_plate = synth
    img, _ = scene_with_plate(render_plate("7ABC123", 30), angle=8)
    good = tmp_path / "car.jpg"
    cv2.imwrite(str(good), img)
    data = good.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 128, np.uint8))
    return good, cut, text, blank


def test_read_goes_on_after_bad_files(tmp_path, synth, capsys):
    good, cut, text, blank = _write(tmp_path, synth)
    rc = main(["plates", "read", str(cut), str(text), str(blank), str(tmp_path / "missing.jpg"), str(good),
               "--region", "us"])
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert rc == 1  # some files were bad
    assert len(lines) == 5
    assert "truncated JPEG" in lines[0]
    assert "not an image" in lines[1]
    assert lines[2].endswith("no plate")
    assert "no such file" in lines[3]
    fields = lines[4].split("\t")
    assert fields[1] == "7ABC123" and fields[4] == "rapidocr" and fields[5].endswith(" ms")
    assert 0 <= float(fields[2]) <= 1
    assert "3 of 5 files could not be read" in out.err  # the image without a plate is no error


def test_read_json(tmp_path, synth, capsys):
    good, cut, _, blank = _write(tmp_path, synth)
    rc = main(["plates", "read", "--json", str(good), str(blank), str(cut)])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 1
    assert rows[0]["text"] == "7ABC123" and len(rows[0]["box"]) == 4 and rows[0]["engine"] == "rapidocr"
    assert len(rows[0]["char_confidences"]) == 7 and rows[0]["ms"] > 0
    assert rows[1]["text"] is None and rows[1]["result"] == "no plate"
    assert "truncated" in rows[2]["error"]


def test_enormous_image_is_a_per_file_error(tmp_path, synth, capsys):
    good, *_ = _write(tmp_path, synth)
    rc = main(["plates", "read", "--max-pixels", "1000", str(good)])
    assert rc == 1
    assert "exceeds the limit of 1000" in capsys.readouterr().out


def test_all_good_exits_zero(tmp_path, synth, capsys):
    good, *_ = _write(tmp_path, synth)
    assert main(["plates", "read", str(good)]) == 0
