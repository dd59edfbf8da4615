"""Fixtures every test area shares: the real data beside the checkout, and a real broker."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real plates, clips, signal crops); skips where a clone has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA} (only beside the development checkout)")
    return SHARED_DATA


@pytest.fixture()
def mosquitto():
    """A real Debian mosquitto on a free loopback port (persistence on, queues sized)."""
    from support.mosquitto import MOSQUITTO, Mosquitto

    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    # not under pytest's tmp_path: its parents are root-only and mosquitto runs as its own user
    workdir = Path(tempfile.mkdtemp(prefix="stopline-mosquitto-"))
    broker = Mosquitto(workdir).start()
    yield broker
    broker.stop()
    shutil.rmtree(workdir, ignore_errors=True)
