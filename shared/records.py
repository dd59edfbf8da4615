"""``violations.jsonl``: the pipeline's record of found violations, one JSON object a line.

``stopline detect`` and the desk's export write it; ``stopline eval`` reads it and scores it
against a synthetic scene's ``truth.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class ViolationRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: str
    camera: str
    track_id: int
    vehicle_class: str
    frame_index: int = Field(description="frame where the vehicle's front crossed the stop line")
    video_time_s: float = Field(description="that frame's time in the video, seconds")
    box: tuple[float, float, float, float] = Field(description="vehicle box x1,y1,x2,y2 at that frame")
    decided_video_s: float = Field(description="video time when the detector raised the event")
    signal_phase: str
    time_into_red_s: float
    plate: str | None = None
    plate_confidence: float | None = None
    plate_region: str | None = None
    evidence: list[str] = Field(default_factory=list, description="evidence file names")


def write_records(path: str | Path, records: Iterable[ViolationRecord]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(r.model_dump_json() + "\n")


def append_record(path: str | Path, record: ViolationRecord) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(record.model_dump_json() + "\n")


def read_records(path: str | Path) -> Iterator[ViolationRecord]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield ViolationRecord.model_validate(json.loads(line))
                except (json.JSONDecodeError, ValueError) as e:
                    raise ValueError(f"{path}:{n}: not a violation record: {e}") from None
