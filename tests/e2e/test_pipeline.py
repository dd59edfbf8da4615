"""End to end: the four services as separate processes through a real mosquitto, a synthetic
scene streamed through them, and the queue compared with the scene's truth."""

import json
import time

import pytest
from support.pipeline import Pipeline, prepare_desk, render_scene, wait_until, write_site

from stopline.report import compare_with_truth, desk_records

SCENE_SECONDS = 60


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    out = render_scene(tmp_path_factory.mktemp("scene"), 11, SCENE_SECONDS, "--red-runners", "0.8")
    assert len(json.loads((out / "truth.json").read_text())["violations"]) >= 4  # a test worth running
    return out


def _run_to_completion(pipe: Pipeline, site, timeout=300):
    finished = wait_until(pipe.detector_done, timeout)
    assert finished, pipe.log_tail()
    sent = pipe.health("vehicle-detector").get("candidates", 0)
    queued = wait_until(lambda: len(desk_records(site)[0]) >= sent, 120)
    assert queued, f"queued {len(desk_records(site)[0])} of {sent}\n" + pipe.log_tail()
    time.sleep(2)  # anything doubled would arrive now
    return sent


def test_pipeline_matches_the_scene_truth(scene, mosquitto, tmp_path):
    site = write_site(tmp_path, scene, mosquitto.host, mosquitto.port)
    prepare_desk(site, scene)
    pipe = Pipeline(site, tmp_path / "logs")
    pipe.start_all()
    try:
        sent = _run_to_completion(pipe, site)
        records, _ = desk_records(site)
        assert len(records) == sent == len({r.event_id for r in records})  # none lost, none doubled
        report = compare_with_truth(site, scene / "truth.json")
        (tmp_path / "report.json").write_text(json.dumps(report, indent=2))
        assert report["recall"] >= 0.8, report
        assert report["precision"] >= 0.9, report
        # every service said online, retained, and the detector recorded nothing dead-lettered
        for service in ("vehicle-detector", "plate-finder", "plate-reader", "violation-desk"):
            assert pipe.health(service).get("healthy"), service
            assert pipe.health(service).get("dead_letters", 0) == 0, service
    finally:
        pipe.stop()


def test_plate_reader_killed_mid_message_loses_and_doubles_nothing(scene, mosquitto, tmp_path):
    site = write_site(tmp_path, scene, mosquitto.host, mosquitto.port)
    prepare_desk(site, scene)
    pipe = Pipeline(site, tmp_path / "logs")
    pipe.start_all()
    try:
        # kill the reader as soon as it has work in hand, twice, restarting it each time
        for _ in range(2):
            assert wait_until(lambda: pipe.health("plate-reader").get("received", 0) > 0, 200), pipe.log_tail()
            pipe.kill("plate-reader")
            time.sleep(1.0)
            pipe.start("plate-reader")
        sent = _run_to_completion(pipe, site)
        records, _ = desk_records(site)
        ids = [r.event_id for r in records]
        assert len(ids) == len(set(ids)) == sent
    finally:
        pipe.stop()
