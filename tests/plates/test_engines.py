"""Engines behind one interface; localisers behind one protocol."""

import importlib.util

import numpy as np
import pytest

from stopline.shared.plates import CascadeLocaliser, EngineError, PlateReader, make_engine
from stopline.shared.plates.engines import rapidocr_model_dir


def test_generic_onnx_engine_reads_like_rapidocr(synth):
    render_plate, _ = synth
    crop = render_plate("7ABC123", 30)
    onnx = make_engine("onnx", model=str(rapidocr_model_dir() / "ch_PP-OCRv4_rec_infer.onnx"))
    rapid = make_engine("rapidocr")
    assert onnx.recognise([crop])[0].text == rapid.recognise([crop])[0].text == "7ABC123"


def test_engine_errors_are_clear(tmp_path):
    with pytest.raises(EngineError, match="not found"):
        make_engine("onnx", model=str(tmp_path / "missing.onnx"))


def test_per_character_confidences_are_probabilities(synth):
    render_plate, _ = synth
    raw = make_engine("rapidocr").recognise([render_plate("7ABC123", 30)])[0]
    assert raw.probs.shape == (7, 36)
    assert (raw.probs.sum(axis=1) <= 1.0 + 1e-4).all() and (raw.confidences > 0.5).all()
    assert list(raw.xs) == sorted(raw.xs)  # characters come left to right


@pytest.mark.skipif(importlib.util.find_spec("easyocr") is None, reason="easyocr (PyTorch) not installed")
def test_easyocr_engine(synth):
    render_plate, scene_with_plate = synth
    img, _ = scene_with_plate(render_plate("ABC1234", 30))
    r = PlateReader(engine="easyocr").read(img, region="br")
    assert r is not None and r.engine == "easyocr" and r.text == "ABC1234"


def test_cascade_localiser_is_pluggable(synth):
    render_plate, scene_with_plate = synth
    img, _ = scene_with_plate(render_plate("7ABC123", 30))
    loc = CascadeLocaliser()
    boxes = loc.locate(img)
    assert isinstance(boxes, list) and all(b.source == "cascade" for b in boxes)
    reader = PlateReader(localiser=loc)
    r = reader.read(img, region="us")
    assert r is None or r.text == "7ABC123"  # a weak detector may miss; it must never misread


def test_separators_mark_character_groups(synth):
    render_plate, _ = synth
    raw = make_engine("rapidocr").recognise([render_plate("AB-1234", 30)])[0]
    assert raw.text == "AB1234"
    assert raw.groups().tolist() == [0, 0, 1, 1, 1, 1]


def test_exclamation_mark_is_read_as_I():
    # a thin 'I' at the plate's edge often comes out as '!': it is a character, not a separator
    engine = make_engine("rapidocr")
    seq = ["R", "<blank>", "!", "<blank>"]
    pred = np.zeros((len(seq), len(engine.classes)), np.float32)
    for t, ch in enumerate(seq):
        pred[t, engine.classes.index(ch)] = 1.0
    assert engine._decode(pred, len(seq)).text == "RI"


def test_a_crop_reads_the_same_alone_or_with_others(synth):
    render_plate, _ = synth
    engine = make_engine("rapidocr")
    crop = render_plate("7ABC123", 30)
    alone = engine.recognise([crop])[0]
    together = engine.recognise([render_plate("AB1234567", 20), crop, render_plate("XY1", 40)])[1]
    np.testing.assert_allclose(alone.probs, together.probs, atol=1e-5)


def test_shipped_models_are_the_defaults():
    """--engine onnx without --model and --localiser yolo without a model use the shipped files."""
    from stopline.models import plate_model, recognizer_model
    from stopline.shared.plates import FirstFound, TextDetLocaliser, YoloLocaliser, make_localiser

    onnx = make_engine("onnx")
    assert onnx.name == "easyocr-onnx" and onnx.session._model_path == str(recognizer_model())
    yolo = make_localiser("yolo")
    assert isinstance(yolo, YoloLocaliser) and yolo.session._model_path == str(plate_model())
    auto = PlateReader().localiser  # the reader's default: plate model, then the text detector
    assert isinstance(auto, FirstFound) and auto.name == "yolo+textdet+textdet"
    assert isinstance(auto.localisers[0], YoloLocaliser) and isinstance(auto.localisers[1], TextDetLocaliser)
