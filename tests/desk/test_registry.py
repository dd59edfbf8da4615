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


def _rows(n: int, address: str = "Road") -> list[dict[str, str]]:
    return [dict(plate=f"B{i:06d}X", region="eu", make="VW", model="Golf", colour="red", vehicle_class="car",
                 owner_name=f"Owner {i}", owner_address=f"{i} {address}") for i in range(n)]


def test_a_bulk_import_and_its_reimport_count_every_row(desk, monkeypatch):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from stopline.services.violation_desk import registry
    from stopline.services.violation_desk.plates import deletion_keys
    from stopline.services.violation_desk.registry import registry_csv

    monkeypatch.setattr(registry, "BULK_MIN", 1000)
    seed = import_registry(desk, io.StringIO(registry_csv(_rows(10))))  # PostgreSQL: straight into vehicles
    assert (seed.inserted, seed.rejected) == (10, [])
    lines: list[str] = []
    first = import_registry(desk, io.StringIO(registry_csv(_rows(3000))), progress=lines.append)
    assert (first.inserted, first.updated, first.unchanged, first.rejected) == (2990, 0, 10, [])
    if desk.engine.dialect.name == "postgresql":  # at least doubles it: the indexes are rebuilt
        assert any("lookup keys written" in line for line in lines), lines
    again = import_registry(desk, io.StringIO(registry_csv(_rows(3000))))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3000)
    changed = _rows(3000)
    for r in changed[:100]:
        r["owner_address"] = "moved"
    more = import_registry(desk, io.StringIO(registry_csv(changed + _rows(3050)[3000:])))
    assert (more.inserted, more.updated, more.unchanged) == (50, 100, 2900)
    with desk.session() as s:
        assert s.scalar(select(func.count()).select_from(Vehicle)) == 3050
        assert s.scalar(select(Vehicle.owner_address).where(Vehicle.plate_norm == "B000000X")) == "moved"
        first_id = s.scalar(select(Vehicle.id).where(Vehicle.plate_norm == "B000000X"))
        for plate in ("B000000X", "B003049X"):  # from the first load, from the third
            vid = s.scalar(select(Vehicle.id).where(Vehicle.plate_norm == plate))
            keys = set(s.scalars(select(RegistryKey.key).where(RegistryKey.vehicle_id == vid)))
            assert keys == deletion_keys(plate)
    with desk.engine.connect() as conn:  # the indexes and the foreign key are in force again
        for bad in (f"registry_keys (key, vehicle_id) VALUES ('000000X', {first_id})",  # a key it has
                    "registry_keys (key, vehicle_id) VALUES ('ZZZ', 999999)",  # no such vehicle
                    "vehicles (plate_norm, plate, region, make, model, colour, vehicle_class, owner_name, "
                    "owner_address, updated_at) VALUES ('B000000X', 'B000000X', 'eu', '', '', '', '', 'x', '', 1)"):
            with pytest.raises(IntegrityError), conn.begin():
                conn.execute(text(f"INSERT INTO {bad}"))
        with conn.begin():  # deleting a vehicle deletes its keys
            conn.execute(text(f"DELETE FROM vehicles WHERE id = {first_id}"))
        assert conn.execute(text(f"SELECT count(*) FROM registry_keys WHERE vehicle_id = {first_id}")).scalar() == 0


def test_lookup_keys_are_the_deletion_keys_of_each_plate(desk):
    from stopline.services.violation_desk.lookup import lookup
    from stopline.services.violation_desk.plates import deletion_keys

    plates = ["AAB11", "ZZZZ", "AB123CD", "ABCDEFGHJKLMNPRS", "Q1", "O0O0O0", "AB-12 2C"]
    csv_text = HEADER + "\n" + "".join(f"{p},eu,VW,Golf,red,car,Owner {i},x\n" for i, p in enumerate(plates))
    import_registry(desk, io.StringIO(csv_text))
    with desk.session() as s:
        for v in s.scalars(select(Vehicle)):
            keys = set(s.scalars(select(RegistryKey.key).where(RegistryKey.vehicle_id == v.id)))
            assert keys == deletion_keys(v.plate_norm), v.plate_norm
        found = lookup(s, "AB1223C", "eu", 0.99, 0.9)  # one deletion away from AB122C ("AB-12 2C")
        assert [m.vehicle.plate_norm for m in found.candidates] == ["AB122C"]


def test_a_plate_too_long_is_refused_not_cut(desk):
    report = import_registry(desk, io.StringIO(HEADER + "\nABCDEFGHJKLMNPRST,eu,VW,Golf,red,car,Long,x\n"))
    assert report.inserted == 0 and report.rejected == [(2, "plate 'ABCDEFGHJKLMNPRST' has 17 letters/digits "
                                                            "(2-16 needed)")]


def test_progress_is_reported_while_importing(desk, monkeypatch):
    from stopline.services.violation_desk import registry

    monkeypatch.setattr(registry, "PROGRESS_EVERY", 1000)
    monkeypatch.setattr(registry, "FLUSH_ROWS", 700)
    lines: list[str] = []
    report = import_registry(desk, io.StringIO(registry.registry_csv(_rows(2500)) + ",eu,,,,,x,y\n"),
                             progress=lines.append)
    assert report.inserted == 2500 and report.rejected == [(2502, "plate is empty")]
    assert [ln.split(" rows read")[0] for ln in lines if "rows/s" in ln] == ["1,000", "2,000"]
    assert any(ln.startswith("2,501 rows read and staged, 1 rejected") for ln in lines)
    assert "2,500 registrations inserted" in " ".join(lines) and lines[-1].startswith("done in")
    from stopline.services.violation_desk.plates import deletion_keys

    keys = sum(len(deletion_keys(f"B{i:06d}X")) for i in range(2500))
    assert f"{keys:,} lookup keys added" in " ".join(lines)


def test_a_file_broken_halfway_imports_nothing(desk, monkeypatch, tmp_path):
    """The rows staged before the broken line go with the transaction; the desk goes on."""
    from stopline.services.violation_desk import registry

    monkeypatch.setattr(registry, "FLUSH_ROWS", 700)
    good = registry.registry_csv(_rows(3000))
    path = tmp_path / "broken.csv"
    path.write_bytes(good.encode() + b"B999999X,eu,VW,Golf,red,car,\xff\xfe,y\n")  # not UTF-8
    with pytest.raises(RegistryError, match=r"broken.csv: line \d+: 'utf-8' codec can't decode"):
        import_registry(desk, path)
    with desk.session() as s:
        assert s.scalar(select(func.count()).select_from(Vehicle)) == 0
    assert import_registry(desk, io.StringIO(good)).inserted == 3000
