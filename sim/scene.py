"""A scene: spec + layout + camera + signal plan + the simulated traffic (no pixels yet)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import Camera, Layout
from .signal import SignalPlan
from .spec import SceneSpec
from .traffic import Agent, TrafficSim


@dataclass
class Track:
    """One agent's motion over the video: arc length and speed per frame from ``first``."""

    agent: Agent
    first: int
    s: np.ndarray
    v: np.ndarray

    def at(self, frame: int) -> tuple[float, float] | None:
        i = frame - self.first
        if 0 <= i < len(self.s):
            return float(self.s[i]), float(self.v[i])
        return None


@dataclass
class Scene:
    spec: SceneSpec
    layout: Layout
    camera: Camera
    plan: SignalPlan
    tracks: list[Track]


def streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for traffic, static scenery and per-frame effects."""
    ss = np.random.SeedSequence(seed)
    return tuple(np.random.default_rng(s) for s in ss.spawn(3))  # type: ignore[return-value]


def build_scene(spec: SceneSpec) -> Scene:
    layout = Layout(spec.lanes)
    camera = Camera(layout, spec.size)
    plan = SignalPlan(spec.signal)
    traffic_rng, _, _ = streams(spec.seed)
    sim = TrafficSim(spec, layout, plan, traffic_rng)
    agents = sim.run(spec.n_frames)
    tracks = []
    for a in agents:
        h = np.array(a.history, dtype=np.float64)
        tracks.append(Track(a, int(h[0, 0]), h[:, 1], h[:, 2]))
    return Scene(spec, layout, camera, plan, tracks)
