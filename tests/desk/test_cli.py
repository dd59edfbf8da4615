"""``stopline desk ...`` commands end to end (exit codes, messages, effects)."""

from __future__ import annotations

import json

from sqlalchemy import select

from stopline.cli import main
from stopline.services.violation_desk.desk import Desk
from stopline.services.violation_desk.ingest import ingest
from stopline.services.violation_desk.models import CameraKey, User, Vehicle
from stopline.services.violation_desk.samples import CameraKeyPair, make_result
from stopline.services.violation_desk.registry import COLUMNS


def _site(tmp_path, url: str):
    path = tmp_path / "site.yaml"
    path.write_text(f"site: t\ndatabase:\n  url: {url}\nservices:\n  violation_desk:\n    evidence_dir: ev\n")
    return str(path)


def test_migrate_add_user_camera_registry_token(db_url, tmp_path, capsys):
    site = _site(tmp_path, db_url)
    assert main(["desk", "migrate", "--config", site]) == 0
    assert main(["desk", "add-user", "ann", "--role", "admin", "--password", "long enough", "--config", site]) == 0
    assert main(["desk", "add-user", "ann", "--password", "long enough", "--config", site]) == 1
    assert "already exists" in capsys.readouterr().err

    key = CameraKeyPair.generate()
    pem = tmp_path / "cam1.pem"
    pem.write_text(key.public_pem)
    assert main(["desk", "add-camera", "--id", "cam1", "--public-key", str(pem), "--config", site]) == 0
    assert key.key_id in capsys.readouterr().out
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    assert main(["desk", "add-camera", "--id", "cam1", "--public-key", str(bad), "--config", site]) == 1

    csv = tmp_path / "registry.csv"
    csv.write_text(",".join(COLUMNS) + "\nAB123CD,eu,VW,Golf,red,car,Ann,1 St\n,eu,,,,,x,y\n")
    assert main(["desk", "import-registry", str(csv), "--config", site]) == 3  # some rows rejected
    captured = capsys.readouterr()
    assert "1 inserted" in captured.out and f"{csv}:3: rejected" in captured.err
    assert f"{csv}: 2 rows read and staged, 1 rejected" in captured.err  # progress, as it goes

    assert main(["desk", "add-token", "ann", "--config", site]) == 0
    assert capsys.readouterr().out.startswith("stl_")

    desk = Desk(db_url, tmp_path / "ev")
    with desk.session() as s:
        assert s.scalar(select(User.role).where(User.username == "ann")) == "admin"
        assert s.scalar(select(CameraKey.key_id)) == key.key_id
        assert s.scalar(select(Vehicle.owner_name)) == "Ann"
    desk.close()


def test_export_writes_approved_violations(seeded, tmp_path, capsys):
    from stopline.services.violation_desk import review

    result, blobs = make_result("AB123CD", confidence=0.99)
    vid = ingest(seeded, result, blobs).violation_id
    ingest(seeded, *make_result("XY987ZZ"))  # stays queued: not exported
    with seeded.session() as s, s.begin():
        sue = s.scalar(select(User).where(User.username == "sue"))
        review.claim(s, vid, sue)
        review.approve(s, vid, sue)
    site = _site(tmp_path, seeded.database_url)
    out = tmp_path / "approved.json"
    assert main(["desk", "export", "--format", "json", "--out", str(out), "--config", site]) == 0
    rows = json.loads(out.read_text())
    assert [r["event_id"] for r in rows] == [result.candidate.event_id]
    assert rows[0]["owner_name"] == "Ann Example" and rows[0]["decided_by"] == "sue"
    assert len(rows[0]["evidence_sha256"]) == 4
    assert main(["desk", "export", "--format", "csv", "--config", site]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("event_id,camera")


def test_config_errors_exit_2(tmp_path, capsys):
    assert main(["desk", "migrate"]) == 2
    assert main(["desk", "migrate", "--config", str(tmp_path / "missing.yaml")]) == 2
