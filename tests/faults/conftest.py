"""Fixtures for the full-pipeline fault tests: one rendered scene per session, the three-host
pipeline per test, and the no-fault run every fault run is compared with."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # pytest runs with --import-mode=importlib
    sys.path.insert(0, str(HERE))

import threehost  # noqa: E402


@pytest.fixture(scope="session")
def need_three_hosts() -> None:
    why = threehost.unavailable()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> Path:
    from support.cache import shared_dir

    # once per run, whichever worker asks first
    return shared_dir(tmp_path_factory, "faults-scene", threehost.render_scene)


@pytest.fixture
def three_hosts(need_three_hosts, scene, tmp_path):
    """A function that opens the three-host pipeline (realtime or not) for this test."""
    import contextlib

    with contextlib.ExitStack() as stack:
        def open_pipeline(realtime: bool = True) -> threehost.ThreeHostPipeline:
            return stack.enter_context(threehost.pipeline(tmp_path / "run", scene, realtime=realtime))

        yield open_pipeline


@pytest.fixture(scope="session")
def baseline(need_three_hosts, scene, tmp_path_factory) -> dict:
    """The run without faults, once per session: what every fault run must match."""
    with threehost.pipeline(tmp_path_factory.mktemp("baseline"), scene, realtime=True) as pipe:
        pipe.start_all()
        return threehost.assert_exactly_once(pipe, None)
