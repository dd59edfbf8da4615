"""One small rendered scene shared by the simulator's tests (640x360, 24 s, 4 violations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stopline.sim.produce import Outputs, render
from stopline.sim.spec import SceneSpec

SPEC = SceneSpec(seed=5, duration_s=24.0, size=(640, 360), red_runner_share=0.6)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[SceneSpec, Outputs]:
    out: Path = tmp_path_factory.mktemp("scene")
    return SPEC, render(SPEC, out, preview=True)
