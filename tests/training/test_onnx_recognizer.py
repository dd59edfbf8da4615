"""The shipped INT8 easyocr recogniser on onnxruntime (no PyTorch): preprocessing as easyocr
does it, CTC decoding, the plate reader's engine interface, and real reading."""

import json

import cv2
import numpy as np
import pytest

from stopline.models import HERE as MODELS
from stopline.shared.plates.engines import EngineError, RawRead
from stopline.shared.plates.onnx_recognizer import EasyOcrOnnxRecognizer, custom_mean, prepare
from stopline.sim.plates import PlateText, render_plate

MODEL = MODELS / "easyocr-en-int8.onnx"
needs_model = pytest.mark.skipif(not MODEL.is_file(), reason="build it: stopline models build")


def test_prepare_scales_to_64_high_and_pads_with_the_last_column():
    crop = np.zeros((32, 100), np.uint8)
    crop[:, -1] = 255  # a white last column is what the padding must repeat
    batch, widths = prepare([crop])
    assert widths == [200]
    assert batch.shape == (1, 1, 64, 256)  # padded to whole squares, as easyocr's recognize does
    assert batch.min() >= -1.0 and batch.max() <= 1.0
    np.testing.assert_allclose(batch[0, 0, :, 200:], batch[0, 0, :, 199:200].repeat(56, axis=1))


def test_prepare_rejects_what_is_not_an_image():
    with pytest.raises(EngineError):
        prepare([np.zeros((1, 40), np.uint8)])
    with pytest.raises(EngineError):
        prepare([np.zeros((20, 40, 2), np.uint8)])


def test_custom_mean_is_easyocrs_line_confidence():
    p = np.array([0.9, 0.8, 0.95, 0.99])
    assert custom_mean(p) == pytest.approx(np.prod(p) ** (2 / np.sqrt(4)))
    assert custom_mean(np.array([])) == 0.0


@needs_model
def test_shipped_recogniser_is_small_and_names_its_characters():
    assert MODEL.stat().st_size < 5_000_000
    rec = EasyOcrOnnxRecognizer(MODEL)
    assert len(rec.characters) == 96 and "A" in rec.characters and "z" in rec.characters


def _line(text: str) -> np.ndarray:
    img = np.full((60, 30 * len(text) + 20, 3), 235, np.uint8)
    cv2.putText(img, text, (10, 45), cv2.FONT_HERSHEY_DUPLEX, 1.4, (20, 20, 20), 3, cv2.LINE_AA)
    return img


@needs_model
def test_reads_printed_plate_text():
    rec = EasyOcrOnnxRecognizer(MODEL)
    texts = ["ABC1234", "7XKD392", "MH48KB1", "KLXPW88"]  # no 0/O, 2/Z look-alikes
    got = [text.upper() for text, _ in rec.read([_line(t) for t in texts])]
    assert sum(g == t for g, t in zip(got, texts)) >= 3, got
    raws = rec.recognise([_line(t) for t in texts])  # the plate reader's interface
    assert all(isinstance(r, RawRead) for r in raws)
    assert sum(r.text == t for r, t in zip(raws, texts)) >= 3, [r.text for r in raws]
    assert all(r.probs.shape[1] == 36 and np.all(r.xs >= 0) and np.all(r.xs <= 1) for r in raws)
    assert all(np.all(np.diff(r.xs) > 0) for r in raws)  # characters left to right


@needs_model
def test_reads_simulator_plates_mostly():
    """The simulator's thin Hershey font is hard for easyocr too (it reads 5 for 3, Z for 2);
    most characters still come out right."""
    from stopline.training.ocr import score

    rec = EasyOcrOnnxRecognizer(MODEL)
    texts = ["ABC1234", "7XKD392", "MH25AB1", "GX19ZKT"]
    crops = []
    for t in texts:
        img = render_plate(PlateText(t, t, "us", "", "TEXAS"), px_per_m=600)
        h, w = img.shape[:2]
        crops.append(img[int(h * 0.25):int(h * 0.8), int(w * 0.05):int(w * 0.95)])  # the character row
    got = score(texts, [t for t, _ in rec.read(crops)])
    assert got["char_accuracy"] >= 0.7, got


@needs_model
def test_blank_crop_reads_nothing_confidently():
    rec = EasyOcrOnnxRecognizer(MODEL)
    text, conf = rec.read([np.full((40, 160, 3), 200, np.uint8)])[0]
    assert len(text) <= 1


@needs_model
def test_card_figures_hold_on_the_held_out_real_crops(shared_data):
    """The held-out exact match per region in easyocr-en.metrics.json is what the shipped model
    scores now, on crops of photos the fine-tuning never saw."""
    from stopline.training.ocr import normalise
    from stopline.training.ocr_finetune import real_crops

    metrics = json.loads((MODELS / "easyocr-en.metrics.json").read_text())
    rec = EasyOcrOnnxRecognizer(MODEL)
    for region, card in metrics["held_out_test"].items():
        crops = real_crops(shared_data / "plates", [region], "test")
        assert len(crops) == card["crops"]
        exact = sum(normalise(rec.read([c.image])[0][0]) == c.text for c in crops) / len(crops)
        assert exact == pytest.approx(card["exact_match"], abs=0.005), region
