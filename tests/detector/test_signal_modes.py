"""Signal phase providers: fixed schedule, controller messages over MQTT (clock offset, late and
out-of-order messages), and ROI heads voted per group."""

from __future__ import annotations

import numpy as np
import pytest

from det_scene import HEAD, draw_head
from stopline.services.vehicle_detector.signal import MqttSignal, RoiSignal, ScheduleSignal
from stopline.shared.config import SignalConfig


def test_schedule_phases_and_red_start():
    s = ScheduleSignal(SignalConfig(mode="schedule", schedule={"cycle_s": 60, "green_s": 25, "amber_s": 4,
                                                               "offset_s": 10}))
    s.update(None, 10.0)  # position 20 s into the cycle
    assert s.phase() == "green"
    s.update(None, 17.0)  # 27 s
    assert s.phase() == "amber"
    s.update(None, 40.0)  # 50 s: red since position 29 s = t 19 s
    assert s.phase() == "red" and s.red_since() == pytest.approx(19.0)
    s.update(None, 125.0)  # next cycles: position 15 s
    assert s.phase() == "green"


def test_mqtt_phases_with_clock_offset_and_out_of_order_messages():
    # the controller's clock runs 2 s ahead of the camera's
    s = MqttSignal(SignalConfig(mode="mqtt", clock_offset_s=2.0))
    s.update(None, 100.0)
    assert s.phase() == "unknown"
    s.on_phase("main", "red", 112.0)  # arrives first, but is later
    s.on_phase("main", "green", 92.0)
    s.on_phase("main", "amber", 107.0)
    s.update(None, 100.0)
    assert s.phase() == "green"
    s.update(None, 106.0)  # camera 106 = controller 108: amber
    assert s.phase() == "amber"
    s.update(None, 111.0)  # camera 111 = controller 113: red since camera 110
    assert s.phase() == "red" and s.red_since() == pytest.approx(110.0)
    s.on_phase("main", "red", 113.0)  # a repeated red does not move the start of red
    s.update(None, 115.0)
    assert s.red_since() == pytest.approx(110.0)


def _frame(phases: dict[int, str]) -> np.ndarray:
    img = np.full((100, 640, 3), 110, np.uint8)
    for x, phase in phases.items():  # a drawn head copied to x
        drawn = np.full((100, 640, 3), 110, np.uint8)
        draw_head(drawn, phase)
        img[:, x:x + 40] = drawn[:, HEAD[0] - 8:HEAD[0] + 32]
    return img


def test_roi_heads_vote_per_group_and_smooth():
    def roi(x):
        return {"x": x + 6, "y": HEAD[1] - 2, "w": HEAD[2] + 4, "h": HEAD[3] + 4}

    cfg = SignalConfig(mode="roi", smoothing_frames=2, heads=[
        {"id": "a", "group": "main", "roi": roi(0)}, {"id": "b", "group": "main", "roi": roi(100)},
        {"id": "c", "group": "main", "roi": roi(200)}, {"id": "l", "group": "left", "roi": roi(300)}])
    s = RoiSignal(cfg)
    f = _frame({0: "red", 100: "red", 200: "green", 300: "green"})  # one main head misread/odd
    s.update(f, 0.0)
    assert s.phase("main") == "unknown"  # not yet 2 frames
    s.update(f, 0.04)
    assert s.phase("main") == "red" and s.phase("left") == "green"
    assert s.red_since("main") == pytest.approx(0.04) and s.red_since("left") is None
