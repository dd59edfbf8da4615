"""Scoring found violations against the truth."""

from __future__ import annotations

import json

import pytest

from stopline.cli import main
from stopline.shared.records import ViolationRecord, write_records
from stopline.sim.evaluate import char_accuracy, perfect_records, score
from stopline.sim.truth import load_truth


def test_perfect_file_scores_one(rendered) -> None:
    _, out = rendered
    truth = load_truth(out.truth)
    report = score(truth, perfect_records(truth, delay_s=0.4))
    assert report.true_violations == len(truth.violations) >= 2
    assert (report.precision, report.recall, report.f1) == (1.0, 1.0, 1.0)
    assert report.plate_exact_rate == 1.0 and report.char_accuracy == 1.0
    assert report.delay_p50_s == pytest.approx(0.4) and report.delay_max_s == pytest.approx(0.4)
    assert not report.missed and not report.spurious


def test_one_missing_one_spurious(rendered) -> None:
    _, out = rendered
    truth = load_truth(out.truth)
    recs = perfect_records(truth)
    n = len(recs)
    dropped = recs.pop(0)
    # a spurious event: a stopped vehicle (amber / green crossing vehicle) at an unrelated time
    other = next(v for v in truth.vehicles if v.id not in {c.vehicle_id for c in truth.violations} and v.track)
    p = other.track[len(other.track) // 2]
    recs.append(ViolationRecord(event_id="bogus", camera=truth.camera, track_id=999, vehicle_class="car",
                                frame_index=p.f, video_time_s=p.f / truth.fps, box=p.box,
                                decided_video_s=p.f / truth.fps + 0.5, signal_phase="red", time_into_red_s=1.0))
    # a wrong plate read on one of the matched ones: one character off
    wrong = recs[0]
    wrong.plate = ("X" if wrong.plate[0] != "X" else "Y") + wrong.plate[1:]
    report = score(truth, recs)
    assert report.true_positives == n - 1
    assert report.false_positives == 1 and report.false_negatives == 1
    assert report.precision == pytest.approx(round((n - 1) / n, 4))
    assert report.recall == pytest.approx(round((n - 1) / n, 4))
    assert report.missed == [dropped.track_id] and report.spurious == ["bogus"]
    assert report.plate_exact_rate == pytest.approx(round((n - 2) / (n - 1), 4))
    assert report.char_accuracy < 1.0


def test_matching_needs_time_and_box(rendered) -> None:
    _, out = rendered
    truth = load_truth(out.truth)
    rec = perfect_records(truth)[0]
    late = rec.model_copy(update={"video_time_s": rec.video_time_s + 1.5})
    assert score(truth, [late]).true_positives == 0
    elsewhere = rec.model_copy(update={"box": (0.0, 0.0, 10.0, 10.0)})
    assert score(truth, [elsewhere]).true_positives == 0
    other_cam = rec.model_copy(update={"camera": "elsewhere"})
    r = score(truth, [other_cam])
    assert r.true_positives == 0 and r.other_cameras == 1 and r.found_violations == 0


def test_char_accuracy() -> None:
    assert char_accuracy("AB123CD", "AB-123-CD") == 1.0
    assert char_accuracy("AB123CD", "AB123C") == pytest.approx(1 - 1 / 7)
    assert char_accuracy("AB123CD", None) == 0.0


def test_eval_cli_writes_json(rendered, tmp_path, capsys) -> None:
    _, out = rendered
    truth = load_truth(out.truth)
    found = tmp_path / "violations.jsonl"
    write_records(found, perfect_records(truth))
    rc = main(["eval", "--truth", str(out.truth), "--found", str(found), "--json", str(tmp_path / "r.json")])
    assert rc == 0
    assert "precision 100.0%" in capsys.readouterr().out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["recall"] == 1.0 and len(data["matches"]) == len(truth.violations)


def test_eval_cli_bad_input(rendered, tmp_path, capsys) -> None:
    _, out = rendered
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"event_id": "x"}\n')
    assert main(["eval", "--truth", str(out.truth), "--found", str(bad)]) == 2
    assert "bad.jsonl:1" in capsys.readouterr().err
    assert main(["eval", "--truth", str(tmp_path / "none.json"), "--found", str(bad)]) == 2
