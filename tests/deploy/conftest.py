"""Fixtures for the deployment tests; the harness lives in ``slnet`` beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # pytest runs with --import-mode=importlib: make slnet importable
    sys.path.insert(0, str(HERE))

from slnet import broker  # noqa: E402

TWO_CAMERA_SITE = """\
site: {site}
cameras:
  - id: a
    stop_line: [[0, 200], [640, 200]]
    travel_direction: [0, -1]
    signal: {{mode: constant, constant: red}}
  - id: b
    stop_line: [[0, 200], [640, 200]]
    travel_direction: [0, 1]
    signal: {{mode: mqtt}}
"""


@pytest.fixture
def two_camera_site(tmp_path: Path) -> Path:
    """A site ``t1`` with cameras ``a`` and ``b`` (b takes its signal over MQTT)."""
    path = tmp_path / "site.yaml"
    path.write_text(TWO_CAMERA_SITE.format(site="t1"))
    return path


@pytest.fixture(scope="session")
def need_mosquitto() -> None:
    why = broker.mosquitto_missing()
    if why:
        pytest.skip(why)
