"""Stop-line geometry: front points for any travel direction, signed offsets, lateral extent."""

from __future__ import annotations

import pytest

from stopline.services.vehicle_detector.geometry import StopLine, front_point, in_polygon

BOX = (100.0, 200.0, 160.0, 300.0)  # 60 wide, 100 tall, centre (130, 250)


@pytest.mark.parametrize("direction,expected", [
    ((0, 1), (130, 300)),  # down: bottom middle
    ((0, -1), (130, 200)),  # up: top middle
    ((1, 0), (160, 250)),  # right
    ((-1, 0), (100, 250)),  # left
    ((1, 1), (160, 280)),  # diagonal: leaves through the right side
])
def test_front_point_is_where_travel_leaves_the_box(direction, expected):
    assert front_point(BOX, direction) == pytest.approx(expected)


def test_offset_sign_follows_travel_direction():
    down = StopLine([(0, 100), (640, 100)], (0, 1))
    assert down.offset((50, 90)) == pytest.approx(-10)
    assert down.offset((50, 130)) == pytest.approx(30)
    up = StopLine([(0, 100), (640, 100)], (0, -1))
    assert up.offset((50, 90)) == pytest.approx(10)


def test_slanted_polyline_and_diagonal_travel():
    line = StopLine([(0, 100), (300, 130), (600, 190)], (0.25, -1))
    assert line.offset((150, 130)) < 0 < line.offset((150, 100))
    assert line.offset((450, 180)) < 0 < line.offset((450, 150))
    assert line.covers((300, 120)) and not line.covers((900, 100))


def test_in_polygon():
    poly = [(0, 0), (10, 0), (10, 10), (0, 10)]
    assert in_polygon((5, 5), poly) and not in_polygon((15, 5), poly)
