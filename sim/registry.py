"""``registry.csv``: an invented owner registry for the scene's plates, with decoys.

Columns ``plate,region,make,model,colour,vehicle_class,owner_name,owner_address``. Besides
every plate in the scene it holds decoy registrations one OCR confusion away (O<->0, B<->8,
...) so a fuzzy lookup that accepts the nearest plate gets the wrong owner.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import numpy as np

MAKES = {
    "car": [("Toyota", "Corolla"), ("Volkswagen", "Golf"), ("Honda", "Civic"), ("Ford", "Focus"),
            ("Renault", "Clio"), ("Hyundai", "i30"), ("Peugeot", "308"), ("Skoda", "Octavia")],
    "van": [("Toyota", "RAV4"), ("Ford", "Transit Custom"), ("Volkswagen", "Tiguan"), ("Nissan", "Qashqai"),
            ("Jeep", "Cherokee"), ("Mercedes-Benz", "Vito")],
    "truck": [("Volvo", "FL"), ("MAN", "TGL"), ("Isuzu", "N-Series"), ("DAF", "LF")],
    "bus": [("Mercedes-Benz", "Citaro"), ("Volvo", "7900"), ("New Flyer", "Xcelsior")],
    "motorcycle": [("Honda", "CB500F"), ("Yamaha", "MT-07"), ("BMW", "F 900 R"), ("Kawasaki", "Z650")],
}
FIRST = ["Alex", "Maria", "Jonas", "Priya", "Sam", "Lena", "Omar", "Chloe", "Diego", "Hannah", "Ivan",
         "Julia", "Kofi", "Mei", "Noah", "Olga", "Pavel", "Rosa", "Tariq", "Ute", "Viktor", "Wen", "Yara", "Zoe"]
LAST = ["Adler", "Brennan", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Horvath", "Ibsen", "Jansen",
        "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Petrov", "Quinn", "Rossi", "Schmidt", "Tanaka"]
STREETS = ["Elm Street", "Harbour Road", "Linden Allee", "Mill Lane", "Oak Avenue", "Quarry Way",
           "Rue des Tilleuls", "Station Road", "Willow Crescent", "Kastanienweg"]
TOWNS = ["Northbridge", "Eastwick", "Lindenfeld", "Port Alder", "Saint-Clair", "Westhaven"]
CONFUSIONS = {"O": "0", "0": "O", "B": "8", "8": "B", "S": "5", "5": "S", "Z": "2", "2": "Z",
              "G": "6", "6": "G", "D": "0", "I": "1", "1": "I", "A": "4", "4": "A", "T": "7", "7": "T"}
COLUMNS = ["plate", "region", "make", "model", "colour", "vehicle_class", "owner_name", "owner_address"]


def _owner(rng: np.random.Generator) -> tuple[str, str]:
    name = f"{FIRST[int(rng.integers(len(FIRST)))]} {LAST[int(rng.integers(len(LAST)))]}"
    addr = f"{int(rng.integers(1, 200))} {STREETS[int(rng.integers(len(STREETS)))]}, {TOWNS[int(rng.integers(len(TOWNS)))]}"
    return name, addr


def _make(rng: np.random.Generator, vclass: str) -> tuple[str, str]:
    opts = MAKES.get(vclass, MAKES["car"])
    return opts[int(rng.integers(len(opts)))]


def decoy_of(plate: str, rng: np.random.Generator) -> str | None:
    """The plate with one character swapped for a look-alike (None if it has none)."""
    spots = [i for i, ch in enumerate(plate) if ch in CONFUSIONS]
    if not spots:
        return None
    i = spots[int(rng.integers(len(spots)))]
    return plate[:i] + CONFUSIONS[plate[i]] + plate[i + 1 :]


def registry_rows(vehicles: Iterable[tuple[str, str, str, str]], rng: np.random.Generator,
                  decoy_share: float = 0.35) -> list[dict[str, str]]:
    """Rows for (plate, region, colour, vehicle_class) of the scene, plus decoys."""
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    vehicles = list(vehicles)
    for plate, region, colour, vclass in vehicles:
        if plate in seen:
            continue
        seen.add(plate)
        make, model = _make(rng, vclass)
        name, addr = _owner(rng)
        rows.append(dict(plate=plate, region=region, make=make, model=model, colour=colour,
                         vehicle_class=vclass, owner_name=name, owner_address=addr))
    n_decoys = max(3, int(round(decoy_share * len(vehicles)))) if vehicles else 0
    order = rng.permutation(len(vehicles))
    colours = ["white", "black", "silver", "grey", "blue", "red"]
    for k in order:
        if n_decoys <= 0:
            break
        plate, region, _, _ = vehicles[int(k)]
        d = decoy_of(plate, rng)
        if d is None or d in seen:
            continue
        seen.add(d)
        vclass = ["car", "van", "motorcycle"][int(rng.integers(3))]
        make, model = _make(rng, vclass)
        name, addr = _owner(rng)
        rows.append(dict(plate=d, region=region, make=make, model=model, colour=colours[int(rng.integers(len(colours)))],
                         vehicle_class=vclass, owner_name=name, owner_address=addr))
        n_decoys -= 1
    rows.sort(key=lambda r: r["plate"])
    return rows


def write_registry(path: str | Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
