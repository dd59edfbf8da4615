"""Accuracy floors on the real openalpr photos (../shared/data), so the reader cannot silently
regress. Every third photo of each set keeps the run short; the full figures come from
``python bench/plates_real.py`` (see README, Plate reading)."""

from pathlib import Path

import pytest

from stopline.shared.plates import load_image, normalise

pytestmark = pytest.mark.realdata


def _samples(folder: Path):
    out = []
    for txt in sorted(folder.glob("*.txt"))[::3]:
        name, x, y, w, h, plate = txt.read_text().strip().split("\t")[:6]
        if plate == "N/A" or "?" in plate:  # caltech-us: unreadable or partly unknown labels
            continue
        x, y, w, h = map(float, (x, y, w, h))
        out.append((folder / name, (x, y, x + w, y + h), normalise(plate)))
    return out


def _run(reader, folder, region):
    rows = []
    for path, box, truth in _samples(folder):
        r = reader.read(load_image(path), region=region)
        hit = bool(r and r.box[0] < box[2] and r.box[2] > box[0] and r.box[1] < box[3] and r.box[3] > box[1])
        rows.append((truth, r.text if r else "", r.confidence if r else 0.0, hit, r is not None))
    return rows


@pytest.fixture(scope="module")
def eu_rows(reader, shared_data):
    return _run(reader, shared_data / "plates" / "openalpr-eu", "eu")


@pytest.fixture(scope="module")
def br_rows(reader, shared_data):
    return _run(reader, shared_data / "plates" / "openalpr-br", "br")


def test_brazil_floor(br_rows):
    n = len(br_rows)
    assert n >= 35
    assert sum(hit for *_, hit, _ in br_rows) / n >= 0.95              # plate found
    assert sum(t == p for t, p, *_ in br_rows) / n >= 0.95             # exact match


def test_europe_floor(eu_rows):
    n = len(eu_rows)
    assert n >= 35
    assert sum(hit for *_, hit, _ in eu_rows) / n >= 0.95
    # several openalpr-eu labels write letter O where the plate shows a zero (RKO99AN): the
    # strict floor sits below the one with O and 0 folded together
    fold = lambda s: s.replace("O", "0")  # noqa: E731
    assert sum(fold(t) == fold(p) for t, p, *_ in eu_rows) / n >= 0.95
    assert sum(t == p for t, p, *_ in eu_rows) / n >= 0.88


def test_high_confidence_reads_are_right(eu_rows, br_rows):
    confident = [(t, p) for t, p, c, *_ in eu_rows + br_rows if c >= 0.9]
    assert len(confident) >= 0.6 * len(eu_rows + br_rows)
    assert sum(t == p for t, p in confident) / len(confident) >= 0.92


@pytest.fixture(scope="module")
def us_rows(reader, shared_data):
    return _run(reader, shared_data / "plates" / "caltech-us", "us")


def test_us_floor(us_rows):
    """US rear plates among state names, slogans, stickers and dealer frames (the reader read
    53 % of them exactly, 29 % 'no plate', before it looked for what a plate looks like)."""
    n = len(us_rows)
    assert n >= 35
    assert sum(not found for *_, found in us_rows) / n <= 0.05          # "no plate"
    assert sum(t == p for t, p, *_ in us_rows) / n >= 0.75               # exact
    confident = [(t, p) for t, p, c, *_ in us_rows if c >= 0.9]
    assert len(confident) >= 0.35 * n
    assert sum(t == p for t, p in confident) / len(confident) >= 0.95


def test_the_plate_model_finds_small_plates_in_whole_photos(shared_data):
    """The plate model sees a whole photo at 256 px, where a US plate is some 23 px wide and
    scores 0.1-0.25: its top box lies on the labelled plate in >= 94 % of the photos of the three
    sets together (92 % when boxes under 0.25 were dropped), so the text detector's slower
    stages run less."""
    from stopline.shared.plates.localise import make_localiser

    plate_model = make_localiser("yolo")
    hits = total = 0
    for folder in ("caltech-us", "openalpr-eu", "openalpr-br"):
        for path, box, _ in _samples(shared_data / "plates" / folder):
            top = plate_model.locate(load_image(path), max_plates=1)
            total += 1
            hits += bool(top) and top[0].box[0] < box[2] and top[0].box[2] > box[0] \
                and top[0].box[1] < box[3] and top[0].box[3] > box[1]
    assert total >= 100
    assert hits / total >= 0.94, f"{hits}/{total}"
