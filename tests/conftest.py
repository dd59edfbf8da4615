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
# in real time) are the long pole: spread over this many worker groups, each with its own
# no-fault baseline run.
THREE_HOST_GROUPS = 3


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks (--dist loadgroup)
def pytest_collection_modifyitems(config, items) -> None:
    """Under ``--dist loadgroup`` a group runs on one worker, in order. Each test module is one
    group, so its module- and session-scoped fixtures (a rendered scene, a PostgreSQL server)
    are made once, as in a serial run; the three-host pipeline tests are dealt over
    ``THREE_HOST_GROUPS`` groups. A test's own ``xdist_group`` mark wins. Tests that share no
    ports, folders or namespace names: ports are picked free, folders are temporary, namespace
    names carry the creating process id (tests/deploy/slnet/netns.py)."""
    def uses(item, fixture: str) -> bool:
        return fixture in getattr(item, "fixturenames", ())

    runs = [item for item in items if uses(item, "three_hosts")]  # a pipeline run each
    deal = {item.nodeid: f"three-host-{k % THREE_HOST_GROUPS}" for k, item in enumerate(runs)}
    deal.update({item.nodeid: "three-host-0" for item in items if uses(item, "baseline") and item.nodeid not in deal})
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            group = deal.get(item.nodeid) or item.nodeid.split("::", 1)[0]
            item.add_marker(pytest.mark.xdist_group(group))

