import pytest

from stopline.shared.plates import PlateReadResult, vote


def r(text, conf, chars=None):
    return PlateReadResult(text=text, confidence=conf, char_confidences=chars or [conf] * len(text),
                           region="br", engine="rapidocr", ms=10.0)


def test_majority_by_character():
    v = vote([r("ABC1234", 0.8), r("ABC1284", 0.7), r("ABC1234", 0.6)])
    assert v.text == "ABC1234" and v.source == "vote"


def test_confidence_weighted_not_count():
    # two weak reads lose to one strong read at the position they disagree on
    v = vote([r("ABC1234", 0.95, [0.95] * 6 + [0.99]), r("ABC1235", 0.3, [0.3] * 7), r("ABC1235", 0.3, [0.3] * 7)])
    assert v.text == "ABC1234"


def test_character_level_composite():
    # each image has one wrong character, at different places; the vote recovers the plate
    v = vote([r("XBC1234", 0.6, [0.2] + [0.9] * 6), r("ABC1Z34", 0.6, [0.9] * 4 + [0.2] + [0.9] * 2),
              r("ABC1234", 0.5)])
    assert v.text == "ABC1234"


def test_length_with_most_confidence_wins():
    v = vote([r("ABC1234", 0.9), r("BC1234", 0.4), r("ABC12345", 0.3)])
    assert v.text == "ABC1234"


def test_agreement_raises_and_disagreement_lowers_confidence():
    one = vote([r("ABC1234", 0.8)])
    agree = vote([r("ABC1234", 0.8), r("ABC1234", 0.8)])
    split = vote([r("ABC1234", 0.8), r("ABC1284", 0.8, [0.8] * 5 + [0.5, 0.8])])
    assert one.confidence == pytest.approx(0.8)
    assert agree.confidence > 0.8
    assert split.confidence < 0.8


def test_nothing_to_vote_on():
    assert vote([]) is None and vote([None, r("", 0.0)]) is None


def test_to_message():
    msg = vote([r("ABC1234", 0.8), r("ABC1234", 0.7)]).to_message(crop_name="plate0.jpg")
    assert msg.text == "ABC1234" and msg.source == "vote" and 0 <= msg.confidence <= 1
    assert len(msg.char_confidences) == 7 and msg.crop == "plate0.jpg"
