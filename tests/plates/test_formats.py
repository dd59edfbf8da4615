import numpy as np
import pytest

from stopline.shared.plates.engines import ALPHABET, RawRead, text_to_raw
from stopline.shared.plates.formats import correct_text, fit_format, formats_for, normalise


@pytest.mark.parametrize("raw,region,expected", [
    ("ABC1234", "br", "ABC1234"),
    ("A8C1234", "br", "ABC1234"),      # 8 in a letter position is a B
    ("ABCI234", "br", "ABC1234"),      # I in a digit position is a 1
    ("0BC12S4", "br", "OBC1254"),      # O/0 and S/5 both ways
    ("ABC1D23", "br", "ABC1D23"),      # Mercosul
    ("ABC1O23", "br", "ABC1O23"),      # Mercosul letter O stays
    ("RK099A1", "eu", "RK099AI"),      # HR/IT LLDDDLL: trailing 1 is an I
    ("7ABC123", "us", "7ABC123"),
    ("7A8C123", "us", "7ABC123"),
    ("rk-099 an", "eu", "RK099AN"),    # separators and case are normalised
])
def test_format_correction(raw, region, expected):
    assert correct_text(raw, region) == expected


def test_no_correction_outside_lookalikes():
    # X is no look-alike of a digit: a Brazilian plate cannot be XBCX234 -> no read, not a guess
    assert correct_text("XBCX234", "br") is None
    assert correct_text("AB", "br") is None        # too short for any Brazilian layout


def test_free_layouts_are_not_forced():
    # vanity / unknown layouts stay as read in regions that allow any 2-8 characters
    assert correct_text("GWAGEN", "eu") == "GWAGEN"
    assert correct_text("M5XSX", "auto") == "M5XSX"
    assert correct_text("ABCDEFGHIJ", "us") is None   # 10 clear characters are no US plate


def test_unknown_region_is_an_error():
    with pytest.raises(ValueError, match="unknown region"):
        formats_for("mars")


def test_normalise():
    assert normalise("ab-12 3·c") == "AB123C"


def _raw(text: str, confs: list[float], xs: list[float] | None = None) -> RawRead:
    probs = np.zeros((len(text), 36), np.float32)
    for i, (c, p) in enumerate(zip(text, confs)):
        probs[i, ALPHABET.index(c)] = p
    xs = xs or list((np.arange(len(text)) + 0.5) / len(text))
    return RawRead(probs, np.array(xs, np.float32))


def test_edge_character_dropped_when_it_makes_the_format():
    # a weak extra character at the edge (a bolt, the frame) is dropped to fit ABC1234
    fit = fit_format(_raw("ABC12347", [0.99] * 7 + [0.4]), "br")
    assert fit.text == "ABC1234" and fit.dropped == 1


def test_colour_mark_character_dropped():
    # an '8' read on an inspection sticker between the groups of 4B4 0262
    read = _raw("4B480262", [1, 1, 1, 0.9, 1, 1, 1, 1])
    plain = fit_format(read, "eu")
    assert plain.text == "4B480262"
    marked = fit_format(read, "eu", droppable=np.array([0, 0, 0, 1, 0, 0, 0, 0], bool))
    assert marked.text == "4B40262"


def test_per_character_confidences_follow_the_read():
    fit = fit_format(_raw("ABC1234", [0.9, 0.5, 0.99, 0.99, 0.99, 0.99, 0.3]), "br")
    assert fit.text == "ABC1234"
    assert fit.confidences[1] == pytest.approx(0.5) and fit.confidences[6] == pytest.approx(0.3)


def test_text_only_engine_reads_get_lookalike_alternatives():
    raw = text_to_raw("A8C1234", 0.8)
    assert raw.text == "A8C1234"
    assert raw.probs[1, ALPHABET.index("B")] > 0


def test_separator_groups_decide_lookalikes():
    # 'W·053011': the recogniser read a separator after the W, so the 0 sits among digits and
    # stays a digit although the AB12345 layout would take it as a letter O
    read = _raw("W053011", [0.98] * 7)
    read.probs[1, ALPHABET.index("O")] = 0.02
    assert fit_format(read, "eu").text == "WO53011"
    read.breaks = np.array([0, 1, 0, 0, 0, 0, 0], bool)
    assert fit_format(read, "eu").text == "W053011"
    # no separator read, no groups: a Mercosul letter between digits stays a letter
    mercosul = _raw("ABC1D23", [1.0] * 7)
    mercosul.breaks = np.zeros(7, bool)
    assert fit_format(mercosul, "br").text == "ABC1D23"


def test_dropping_a_character_keeps_the_group_break():
    read = _raw("4B480262", [1.0] * 8)
    read.breaks = np.array([0, 0, 0, 1, 0, 0, 0, 0], bool)   # a separator before the sticker '8'
    kept = read.take(np.array([0, 1, 2, 4, 5, 6, 7]))
    assert kept.text == "4B40262"
    assert kept.breaks.tolist() == [False, False, False, True, False, False, False]
    assert kept.groups().tolist() == [0, 0, 0, 1, 1, 1, 1]


def test_german_layouts_keep_their_letters():
    """'UE YD 936' (district, two letters, three digits) is a German plate: its fourth letter is not
    forced into a digit of another layout ('UEY0936')."""
    assert correct_text("UEYD936", "eu") == "UEYD936"
    assert correct_text("MDH555", "eu") == "MDH555"
