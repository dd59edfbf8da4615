"""The real red-light clips in ../shared/data/video with the example camera files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stopline.cli import main
from stopline.shared.records import read_records

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = pytest.mark.realdata


def _detect(shared_data, name, tmp_path):
    out = tmp_path / name
    rc = main(["detect", str(shared_data / "video" / f"{name}.mp4"), "--camera",
               str(EXAMPLES / f"{name}.camera.yaml"), "--out", str(out), "--no-progress"])
    assert rc == 0
    return sorted(read_records(out / "violations.jsonl"), key=lambda r: r.frame_index)


def test_demo1_flags_the_minivan_and_both_blue_cars(shared_data, tmp_path):
    """Three vehicles cross on red: the minivan (front on the line ~frame 116), a dark-blue car
    (~182) and a light-blue car right behind it (~265, 1.4 s before the clip ends). The example
    camera declares its through lanes `straight`, so the last crossing is not held back waiting
    to see whether it turns right on red (the clip ends first)."""
    recs = _detect(shared_data, "redlight_demo1", tmp_path)
    frames = [r.frame_index for r in recs]
    assert len(recs) == 3, frames
    assert 105 <= frames[0] <= 150 and 170 <= frames[1] <= 210 and 250 <= frames[2] <= 285, frames
    assert all(r.signal_phase == "red" for r in recs)
    assert [r.track_id for r in recs] == sorted(set(r.track_id for r in recs)), "three different vehicles"


def test_demo2_flags_the_red_car_crossing(shared_data, tmp_path):
    recs = _detect(shared_data, "redlight_demo2", tmp_path)
    assert [r.signal_phase for r in recs] == ["red"]
    assert 35 <= recs[0].frame_index <= 65


def test_speed_cars_under_constant_green_flags_nothing(shared_data, tmp_path):
    assert _detect(shared_data, "speed_cars", tmp_path) == []


def test_camera_check_reads_red_on_demo2(shared_data, tmp_path, capsys):
    rc = main(["camera", "check", "--camera", str(EXAMPLES / "redlight_demo2.camera.yaml"),
               "--source", str(shared_data / "video" / "redlight_demo2.mp4"), "--out", str(tmp_path / "c.png"),
               "--seconds", "3"])
    assert rc == 0
    out = capsys.readouterr().out
    share = re.search(r"signal over the run: red (\d+)%", out)
    assert share and int(share.group(1)) >= 95, out  # red from the third frame on (smoothing)
