"""The crossing rule on tracked boxes directly: which lane a crossing belongs to."""

from __future__ import annotations

from det_scene import STOP_Y, camera
from stopline.services.vehicle_detector.rules import CrossingRule

LANES = [{"id": "a", "polygon": [[100, 0], [300, 0], [300, 360], [100, 360]]},
         {"id": "b", "polygon": [[300, 0], [500, 0], [500, 360], [300, 360]]}]


def crossings(x1: float, x2: float, height: float = 120.0) -> list:
    """A box x1..x2 wide driving down through the stop line (travel [0, 1]: its front is the
    middle of its bottom edge)."""
    rule = CrossingRule(camera(lanes=LANES))
    out = []
    for k in range(12):
        bottom = STOP_Y - 50 + 10 * k
        out += rule.update(k / 25, {1: (x1, bottom - height, x2, bottom)})
    return out


def test_a_crossing_is_in_the_lane_its_front_is_in():
    assert [c.lane for c in crossings(320, 440)] == ["b"]


def test_a_wide_vehicle_sticking_out_past_its_lane_edge_still_counts_in_that_lane():
    # a bus 540 px wide whose front (x 525, its centre too) is 25 px right of lane b: within a
    # tenth of the box (35 px) of lane b, so it is that lane's crossing (it used to be dropped)
    assert [c.lane for c in crossings(255, 795, height=350)] == ["b"]


def test_a_crossing_well_outside_every_lane_is_ignored():
    assert crossings(540, 620) == []  # front at x 580: 80 px outside, box 80 px wide
