"""import-registry: validated upsert with a report of rejected rows."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from stopline.services.violation_desk.models import RegistryKey, Vehicle
from stopline.services.violation_desk.registry import COLUMNS, RegistryError, import_registry

HEADER = ",".join(COLUMNS)


def test_rows_are_upserted_and_bad_rows_reported_by_line(desk, tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text(
        HEADER + "\n"
        "AB-123 CD,EU,VW,Golf,Red,Car,Ann Example,1 High St\n"  # line 2: ok
        ",eu,VW,Golf,red,car,Nobody,nowhere\n"                   # line 3: no plate
        "XY 98,eu,Fiat,Panda,blue,car,,3 Mid Lane\n"             # line 4: no owner
        "ab123cd,eu,VW,Polo,red,car,Dup Example,x\n"             # line 5: same plate+region as 2
        "Q,eu,VW,Polo,red,car,Short Plate,x\n"                   # line 6: plate too short
        "AB123CD,br,VW,Gol,red,car,Bea Exemplo,Rua 1\n"          # line 7: ok, other region
        "too,few,fields\n",                                       # line 8
        encoding="utf-8")
    report = import_registry(desk, path)
    assert (report.inserted, report.updated) == (2, 0)
    assert [line for line, _ in report.rejected] == [3, 4, 5, 6, 8]
    reasons = dict(report.rejected)
    assert "plate" in reasons[3] and "owner_name" in reasons[4] and "line 2" in reasons[5]
    with desk.session() as s:
        v = s.scalar(select(Vehicle).where(Vehicle.region == "eu"))
        assert (v.plate_norm, v.plate, v.colour, v.vehicle_class) == ("AB123CD", "AB-123 CD", "red", "car")
        assert s.scalar(select(func.count()).select_from(RegistryKey)) > 2  # plate + its deletions


def test_importing_again_updates_changed_rows_only(desk):
    first = HEADER + "\nAB123CD,eu,VW,Golf,red,car,Ann Example,1 High St\nXY987ZZ,eu,Fiat,Panda,blue,car,Cleo,3 Mid\n"
    import_registry(desk, io.StringIO(first))
    second = HEADER + "\nAB123CD,eu,VW,Golf,red,car,Ann Example,9 New Road\nXY987ZZ,eu,Fiat,Panda,blue,car,Cleo,3 Mid\n"
    report = import_registry(desk, io.StringIO(second))
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 1)
    with desk.session() as s:
        assert s.scalar(select(Vehicle.owner_address).where(Vehicle.plate_norm == "AB123CD")) == "9 New Road"
        assert s.scalar(select(func.count()).select_from(Vehicle)) == 2


def test_a_wrong_header_rejects_the_whole_file(desk):
    with pytest.raises(RegistryError, match="missing owner_address"):
        import_registry(desk, io.StringIO("plate,region,make,model,colour,vehicle_class,owner_name\nA,eu,,,,,x\n"))
    with pytest.raises(RegistryError, match="unknown vin"):
        import_registry(desk, io.StringIO(HEADER + ",vin\n"))
    with desk.session() as s:
        assert s.scalar(select(func.count()).select_from(Vehicle)) == 0
