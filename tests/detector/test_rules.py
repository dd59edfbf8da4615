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


def test_a_motorcycle_riding_on_its_lane_edge_counts_in_that_lane():
    # a motorcycle 16 px wide whose front (x 94) is 6 px left of lane a: half of it is in the lane
    assert [c.lane for c in crossings(86, 102, height=50)] == ["a"]
    # a wide box with its front (and centre) 6 px outside is not: a tenth of it is 5 px
    assert crossings(50, 138, height=50) == []


def test_a_crossing_well_outside_every_lane_is_ignored():
    assert crossings(540, 620) == []  # front at x 580: 80 px outside, box 80 px wide


# -- the turn watch for a vehicle whose front leaves the frame --------------------------------
TURN_LANE = [{"id": "a", "polygon": [[0, 0], [640, 0], [640, 360], [0, 360]], "movement": "straight_right"}]
TURN_ZONE = [{"name": "right-turn", "polygon": [[0, 250], [60, 250], [60, 360], [0, 360]]}]


def first_straight(dx_per_frame: float, dy_per_frame: float, frames: int = 25) -> float | None:
    """Seconds from the crossing to the watch's "straight" verdict for a truck 400x200 px that
    crosses a stop line 20 px above the frame's bottom, drives on 20 px (its box now clipped at
    y=360: the front is out of view) and then moves (dx, dy) a frame; None if the watch stays
    undecided for ``frames`` frames."""
    cam = camera(lanes=TURN_LANE, exempt_zones=TURN_ZONE, stop_line=[[0, 340], [640, 340]])
    rule = CrossingRule(cam, frame_size=(640, 360))
    crossing = None
    for k in range(7):
        bottom = 340 - 50 + 10 * k
        crossing = crossing or next(iter(rule.update(k / 25, {1: (120.0, bottom - 200, 520.0, bottom)})), None)
    assert crossing is not None and crossing.box[3] == 340
    x, top = crossing.box[0], crossing.box[1]
    for n in range(1, frames + 1):
        dx, dy = (0, 10) if n <= 2 else (dx_per_frame, dy_per_frame)
        x, top = x + dx, top + dy
        t = crossing.t + n / 25
        if rule.turn_status(crossing, (x, top, x + 400, min(360.0, top + 200)), t) == "straight":
            return t - crossing.t
    return None


def test_a_big_vehicle_going_straight_out_of_the_frame_is_judged_straight_early():
    # its front point sticks at the frame edge, so "half a box past the line" can never hold;
    # the rear going on straight decides (before this, the watch waited 4 s or, if the tracker
    # lost the truck meanwhile, let it off as a possible right turn)
    waited = first_straight(0, 10)
    assert waited is not None and waited < 1.0


def test_a_big_vehicle_stopped_past_the_line_stays_undecided():
    assert first_straight(0, 0) is None


def test_a_big_vehicle_veering_towards_the_exempt_zone_is_not_judged_straight():
    assert first_straight(-10, 6) is None


def test_a_box_whose_front_alone_crosses_is_growing_not_a_vehicle_crossing():
    """A waiting vehicle's box swallowing cross traffic passing in front of it: its front edge
    runs over the line while its rear stays put (hanoi_1615's van at the head of the queue)."""
    rule = CrossingRule(camera(lanes=LANES), frame_size=(640, 360))
    out = []
    for k in range(12):
        out += rule.update(k / 6, {1: (150.0, 60.0, 250.0, STOP_Y - 50 + 12 * k)})  # top fixed at y 60
    assert len(out) == 1 and out[0].growing


def test_a_vehicle_driving_over_the_line_is_not_growing():
    out = crossings(320, 440)
    assert len(out) == 1 and not out[0].growing
