"""US plates: every state's layouts, 7-8 characters, the open-topped 4 of US fonts, and no
sticker in the character row."""

import numpy as np
import pytest

from stopline.shared.plates.engines import ALPHABET, text_to_raw
from stopline.shared.plates.formats import correct_text, fit_format, formats_for
from stopline.shared.plates.us_states import STATE_LAYOUTS

STATES = ("AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY "
          "NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY").split()


def test_all_fifty_states_have_layouts():
    assert len(STATES) == 50 and set(STATES) <= set(STATE_LAYOUTS)
    us = {f.pattern for f in formats_for("us") if f.specific}
    for state in STATES:
        assert set(STATE_LAYOUTS[state]) <= us, state


@pytest.mark.parametrize("plate,state", [
    ("A12BCD", "NJ"), ("AB1C2D", "MO"), ("1234AB", "ME"), ("12A345", "NV"), ("1ABC234", "CA"),
    ("ABC1234", "NY"), ("1234567A", "MT"), ("1AB2345", "MD"), ("A123BC", "UT"),
])
def test_state_serials_fit_a_specific_layout(plate, state):
    fit = fit_format(text_to_raw(plate, 0.95), "us")
    assert fit is not None and fit.text == plate
    assert fit.format.specific, f"{plate} ({state}) fell back to 'any characters'"


def test_vanity_plates_up_to_eight_characters():
    assert correct_text("XKALABR", "us") == "XKALABR"
    assert correct_text("GOBEARS8", "us") == "GOBEARS8"
    assert correct_text("ABCDEFGHIJK", "us") is None  # even without two edge characters: no US plate


def test_open_topped_four_read_as_l():
    # California's 4 is open at the top: recognisers read it as L; the layout makes it a 4
    assert correct_text("LGHY3L5", "us") == "4GHY345"


def test_no_sticker_drop_inside_a_us_row():
    # a colour mark under the last character: on a European plate a sticker or band may be left
    # out; on a US plate the row holds only the serial, so nothing is dropped for its colour
    raw = text_to_raw("4EHY466", 0.97)
    marks = np.zeros(7, bool)
    marks[6] = True
    us = fit_format(raw, "us", droppable=marks)
    assert us is not None and us.text == "4EHY466" and us.dropped == 0
    assert len(ALPHABET) == 36
