"""Fixtures every test area shares: the real data beside the checkout, and a real broker; and
how ``make test`` spreads the tests over parallel workers (pytest-xdist, docs/testing.md)."""

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


# The three-host pipeline runs (tests/faults: namespaces, two brokers, PostgreSQL, a scene played
# in real time, each group with its own no-fault baseline run) are dealt over this many groups.
THREE_HOST_GROUPS = 3
_dealt: list[str] = []


def pytest_itemcollected(item) -> None:
    """How ``make test`` (pytest-xdist, ``--dist loadgroup``) spreads the tests: each test goes
    to whichever worker is free, except the three-host pipeline tests, dealt over
    ``THREE_HOST_GROUPS`` groups that each run on one worker, in order (so no more than three
    scenes play in real time at once, and each group's baseline is made once). A test's own
    ``xdist_group`` mark wins. Tests share no ports, folders or namespace names: ports are
    picked free, folders are temporary, namespace names carry the creating process id
    (tests/deploy/slnet/netns.py); the costly scenes are rendered once (support/cache.py).
    Marks are added here, as each test is collected, because xdist reads them in its own
    ``pytest_collection_modifyitems``."""
    fixtures = set(getattr(item, "fixturenames", ()))
    if item.get_closest_marker("xdist_group") is not None:
        return
    if "three_hosts" in fixtures:  # a pipeline run each
        _dealt.append(item.nodeid)
        item.add_marker(pytest.mark.xdist_group(f"three-host-{(len(_dealt) - 1) % THREE_HOST_GROUPS}"))
    elif "baseline" in fixtures:  # the baseline's own check: free once a group has made it
        item.add_marker(pytest.mark.xdist_group("three-host-0"))
