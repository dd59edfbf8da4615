"""``truth.json``: what was rendered, frame by frame, and which crossings were violations.

Format ``stopline-sim-truth/1`` (all pixel coordinates in the video's frame, after shake)::

    {"format": "stopline-sim-truth/1", "camera": "sim", "video": "video.mp4", "codec": "mp4v",
     "frame_size": [1280, 720], "fps": 25.0, "n_frames": 1500, "seed": 7, "lighting": "day",
     "spec": {...every SceneSpec field...},
     "stop_line": [[x, y], [x, y]],            # as in camera.yaml (no shake)
     "frames": [{"f": 0, "t": 0.0, "phase": "green", "time_into_red_s": 0.0, "shake": [dx, dy]}, ...],
     "vehicles": [{"id": 3, "class": "car", "colour": "white", "plate": "AB123CD",
                   "plate_display": "AB-123-CD", "region": "eu", "lane": "a0",
                   "movement": "straight", "behaviour": "runner",
                   "track": [{"f": 12, "box": [x1, y1, x2, y2], "vis": 0.93, "front": [x, y],
                              "plate": [[x, y] x4] | null, "plate_side": "front", "plate_vis": 1.0}, ...]}],
     "violations":       [Crossing, ...],   # front crossed the stop line while the approach was red
     "amber_crossings":  [Crossing, ...],   # crossed during amber: recorded, not violations
     "exempt_crossings": [Crossing, ...]}   # right turns on red the approach allows

A ``Crossing`` is ``{"vehicle_id", "frame", "time_s", "phase", "time_into_red_s", "speed_m_s",
"lane", "movement", "plate"}``; ``frame`` is the first frame whose front point (middle of the
front bumper, on the ground) is past the stop line, ``time_s = frame / fps``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .scene import Scene

FORMAT = "stopline-sim-truth/1"


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FrameState(_M):
    f: int
    t: float
    phase: Literal["green", "amber", "red"]
    time_into_red_s: float
    shake: tuple[int, int] = (0, 0)


class TrackPoint(_M):
    f: int
    box: tuple[float, float, float, float]
    vis: float = Field(ge=0, le=1, description="visible fraction: occlusion and frame edges")
    front: tuple[float, float]
    plate: list[tuple[float, float]] | None = None
    plate_side: Literal["front", "rear"] | None = None
    plate_vis: float | None = None


class Vehicle(_M):
    id: int
    class_: str = Field(alias="class")
    colour: str
    plate: str
    plate_display: str
    region: str
    lane: str
    movement: Literal["straight", "right", "away"]
    behaviour: str
    track: list[TrackPoint]

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def at(self, frame: int) -> TrackPoint | None:
        lo, hi = 0, len(self.track)
        while lo < hi:  # track is sorted by frame
            mid = (lo + hi) // 2
            if self.track[mid].f < frame:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(self.track) and self.track[lo].f == frame:
            return self.track[lo]
        return None


class Crossing(_M):
    vehicle_id: int
    frame: int
    time_s: float
    phase: Literal["green", "amber", "red"]
    time_into_red_s: float
    speed_m_s: float
    lane: str
    movement: str
    plate: str


class Truth(_M):
    format: Literal["stopline-sim-truth/1"] = FORMAT
    camera: str
    video: str = "video.mp4"
    codec: str = "mp4v"
    frame_size: tuple[int, int]
    fps: float
    n_frames: int
    seed: int
    lighting: str
    spec: dict
    stop_line: list[tuple[float, float]]
    frames: list[FrameState]
    vehicles: list[Vehicle]
    violations: list[Crossing]
    amber_crossings: list[Crossing]
    exempt_crossings: list[Crossing]

    def vehicle(self, vid: int) -> Vehicle:
        for v in self.vehicles:
            if v.id == vid:
                return v
        raise KeyError(f"no vehicle {vid} in the truth")


def crossings(scene: Scene) -> tuple[list[Crossing], list[Crossing], list[Crossing]]:
    """(violations, amber crossings, exempt crossings) from the simulated motion."""
    spec, plan = scene.spec, scene.plan
    viol, amber, exempt = [], [], []
    for tr in scene.tracks:
        stop_s = tr.agent.path.stop_s
        if stop_s is None:
            continue
        past = tr.s >= stop_s
        if not past.any() or past[0]:
            continue  # never crossed, or crossed before the video started
        i = int(past.argmax())
        frame = tr.first + i
        t = frame / spec.fps
        phase = plan.phase(t)
        a = tr.agent
        c = Crossing(vehicle_id=a.vid, frame=frame, time_s=round(t, 4), phase=phase,
                     time_into_red_s=round(plan.time_into_red(t), 4), speed_m_s=round(float(tr.v[i]), 3),
                     lane=a.lane, movement="right" if a.turning else "straight", plate=a.plate.text)  # type: ignore[union-attr]
        if phase == "amber":
            amber.append(c)
        elif phase == "red":
            (exempt if a.turning and spec.right_turn_on_red else viol).append(c)
    key = lambda c: (c.frame, c.vehicle_id)  # noqa: E731
    return sorted(viol, key=key), sorted(amber, key=key), sorted(exempt, key=key)


def write_truth(path: str | Path, truth: Truth) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(truth.model_dump_json(by_alias=True, exclude_none=True), encoding="utf-8")
    tmp.replace(path)


def load_truth(path: str | Path) -> Truth:
    """Read and validate a ``truth.json``; ValueError names the file and the problem."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file (format={data.get('format') if isinstance(data, dict) else None!r})")
    try:
        return Truth.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        raise ValueError(f"{path}: invalid truth at {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
