"""Render a scene to a folder: video.mp4, truth.json, camera.yaml, registry.csv, preview.png."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from stopline.shared.config import dump_camera

from .camera_config import camera_config
from .preview import annotate, contact_sheet, pick_frames
from .registry import registry_rows, write_registry
from .frames import FrameRenderer
from .scene import build_scene
from .spec import SceneSpec
from .truth import FrameState, Truth, crossings, write_truth

log = logging.getLogger(__name__)


@dataclass
class Outputs:
    video: Path
    truth: Path
    camera: Path
    registry: Path
    preview: Path | None
    codec: str
    n_violations: int


_CODEC: str | None = None


def _h264_available() -> bool:
    """Probe once whether this OpenCV build can write H.264, with its stderr noise hidden."""
    global _CODEC
    if _CODEC is None:
        with tempfile.TemporaryDirectory() as d:
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 2)  # FFmpeg reports the missing encoder on fd 2
                w = cv2.VideoWriter(str(Path(d) / "probe.mp4"), cv2.VideoWriter_fourcc(*"avc1"), 25, (64, 64))
                ok = w.isOpened()
                w.release()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                os.close(devnull)
        _CODEC = "avc1" if ok else "mp4v"
    return _CODEC == "avc1"


def open_writer(path: Path, fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, str]:
    """H.264 where this OpenCV build can encode it, else MPEG-4 part 2."""
    codecs = ("avc1", "mp4v") if _h264_available() else ("mp4v",)
    for codec in codecs:
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
        if w.isOpened():
            return w, codec
        w.release()
    raise RuntimeError(f"OpenCV cannot write {path} with {' or '.join(codecs)} (no FFMPEG video support in this build?)")


def render(spec: SceneSpec, out_dir: str | Path, preview: bool = False,
           progress: Callable[[int, int], None] | None = None) -> Outputs:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = build_scene(spec)
    renderer = FrameRenderer(scene)
    viol, amber, exempt = crossings(scene)
    cam_cfg = camera_config(scene, renderer.signal_box())
    agents = {t.agent.vid: t.agent for t in scene.tracks}
    n = spec.n_frames
    events = [c.frame for c in viol] + [c.frame for c in exempt + amber]
    keep = set(pick_frames(n, events)) if preview else set()
    kept: dict[int, tuple[np.ndarray, list[dict]]] = {}
    tracks: dict[int, list[dict]] = {}
    frames: list[FrameState] = []
    video_path = out / "video.mp4"
    tmp_video = out / "video.tmp.mp4"
    writer, codec = open_writer(tmp_video, spec.fps, spec.size)
    try:
        for f in range(n):
            img, entries = renderer.render(f)
            writer.write(img)
            t = f / spec.fps
            frames.append(FrameState(f=f, t=round(t, 4), phase=scene.plan.phase(t),
                                     time_into_red_s=round(scene.plan.time_into_red(t), 4),
                                     shake=(int(renderer.shake[f][0]), int(renderer.shake[f][1]))))
            if f in keep:
                kept[f] = (img, [dict(e) for e in entries])
            for e in entries:
                point = {k: val for k, val in e.items() if k != "id"}
                point["f"] = f
                tracks.setdefault(e["id"], []).append(point)
            if progress:
                progress(f + 1, n)
    finally:
        writer.release()
    tmp_video.replace(video_path)

    vehicles = []
    for vid, pts in sorted(tracks.items()):
        a = agents[vid]
        vehicles.append({
            "id": vid, "class": a.vclass, "colour": a.body.colour_name, "plate": a.plate.text,  # type: ignore[union-attr]
            "plate_display": a.plate.display, "region": a.plate.region, "lane": a.lane,  # type: ignore[union-attr]
            "movement": "away" if a.lane.startswith("o") else ("right" if a.turning else "straight"),
            "behaviour": a.driver.behaviour, "track": pts,
        })
    spec_dict = asdict(spec)
    truth = Truth.model_validate({
        "camera": spec.camera_id, "video": video_path.name, "codec": codec, "frame_size": spec.size,
        "fps": spec.fps, "n_frames": n, "seed": spec.seed, "lighting": spec.lighting, "spec": spec_dict,
        "stop_line": cam_cfg.stop_line, "frames": [fs.model_dump() for fs in frames], "vehicles": vehicles,
        "violations": [c.model_dump() for c in viol], "amber_crossings": [c.model_dump() for c in amber],
        "exempt_crossings": [c.model_dump() for c in exempt],
    })
    truth_path = out / "truth.json"
    write_truth(truth_path, truth)
    camera_path = out / "camera.yaml"
    camera_path.write_text(dump_camera(cam_cfg), encoding="utf-8")
    reg_rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 7]))
    rows = registry_rows(((v["plate"], v["region"], v["colour"], v["class"]) for v in vehicles), reg_rng)
    registry_path = out / "registry.csv"
    write_registry(registry_path, rows)
    preview_path = None
    if preview:
        vmap = {v["id"]: v for v in vehicles}
        violators = {c.vehicle_id for c in viol}
        tiles = []
        for f in sorted(kept):
            img, entries = kept[f]
            fs = frames[f]
            tiles.append(annotate(img, f, fs.t, fs.phase, entries, vmap, cam_cfg, violators, fs.shake))
        preview_path = out / "preview.png"
        cv2.imwrite(str(preview_path), contact_sheet(tiles))
    log.info("rendered %d frames to %s (%s): %d violations, %d amber, %d exempt", n, out, codec,
             len(viol), len(amber), len(exempt))
    return Outputs(video_path, truth_path, camera_path, registry_path, preview_path, codec, len(viol))
