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
    rc = main(["plates", "read", "--json", str(good), str(blank), str(cut), "--region", "us"])
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


def test_bad_inputs_are_per_file_json_errors(tmp_path, synth, capsys):
    """Not an image, 0 bytes, 100 megapixels: a clear error each, the run goes on; a CMYK JPEG is
    an image like any other (converted, then read)."""
    import io

    from PIL import Image

    good, _, text, _ = _write(tmp_path, synth)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    huge = tmp_path / "huge.png"
    cv2.imwrite(str(huge), np.zeros((10_000, 10_000), np.uint8))  # 100 MP, a small file
    cmyk = tmp_path / "cmyk.jpg"
    buf = io.BytesIO()
    Image.open(good).convert("CMYK").save(buf, "JPEG", quality=95)
    cmyk.write_bytes(buf.getvalue())
    rc = main(["plates", "read", "--json", "--region", "us", str(text), str(empty), str(huge), str(cmyk), str(good)])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 1 and len(rows) == 5
    assert "not an image" in rows[0]["error"]
    assert "empty file" in rows[1]["error"]
    assert "10000x10000" in rows[2]["error"] and "exceeds the limit" in rows[2]["error"]
    assert rows[3].get("text") == "7ABC123", rows[3]
    assert rows[4]["text"] == "7ABC123"


def test_default_localiser_and_engine_models_need_no_path(tmp_path, synth, capsys):
    good, *_ = _write(tmp_path, synth)
    assert main(["plates", "read", "--json", "--localiser", "yolo", "--region", "us", str(good)]) in (0, 1)
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert "error" not in row
    assert main(["plates", "read", "--json", "--engine", "onnx", "--region", "us", str(good)]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert "error" not in row and row["engine"] in ("easyocr-onnx", "rapidocr")


def test_unreadable_below_the_floor(tmp_path, synth, capsys):
    """A read whose calibrated confidence is below the floor names nobody: 'unreadable'."""
    from stopline.shared.plates import PlateReader, load_image
    from stopline.shared.plates.calibration import Calibration

    good, *_ = _write(tmp_path, synth)
    unsure = Calibration({"rapidocr": ([0.0, 1.0], [0.2, 0.3])})  # every read 20-30 % likely right
    r = PlateReader(calibration=unsure).read(load_image(good), region="us")
    assert r is not None and r.unreadable and r.text == "" and r.guess == "7ABC123" and r.confidence < 0.5
    sure = PlateReader(calibration=Calibration({"rapidocr": ([0.0, 1.0], [0.9, 0.99])}))
    assert sure.read(load_image(good), region="us").text == "7ABC123"
