"""Synthetic intersection: rendered red-light camera footage with exact truth, and scoring.

Python API::

    from stopline.sim import SceneSpec, render, load_truth, score
    out = render(SceneSpec(seed=7, duration_s=60), "out/", preview=True)
    report = score(load_truth(out.truth), records)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .evaluate import EvalReport, score
    from .produce import Outputs, render
    from .spec import SceneSpec, SignalTimings
    from .truth import Truth, load_truth

_EXPORTS = {
    "SceneSpec": "spec", "SignalTimings": "spec", "render": "produce", "Outputs": "produce",
    "load_truth": "truth", "Truth": "truth", "score": "evaluate", "EvalReport": "evaluate",
    "export_yolo": "yolo", "ExportStats": "yolo",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    # lazy, so ``import stopline.sim`` stays cheap for callers that need one piece
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(name)
