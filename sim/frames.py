"""Frames: background + shadows + vehicles and signal head in depth order + glare, blur,
shake and sensor noise. ``FrameRenderer.render(f)`` returns the raw frame and its truth."""

from __future__ import annotations

import cv2
import numpy as np

from .background import render_background
from .draw import LIGHT_LEVEL, Pose, VehicleArtist, add_glow, to_world
from .geometry import Camera
from .plates import render_plate
from .scene import Scene, Track, streams
from .signal import Phase

MARGIN = 8  # background border for camera shake
SIGNAL_W, SIGNAL_H, SIGNAL_D = 0.36, 1.0, 0.3
LAMP_R = 0.11
LAMP_ON = {"red": (40, 40, 255), "amber": (20, 190, 255), "green": (170, 255, 60)}
LAMP_OFF = {"red": (30, 30, 70), "amber": (25, 55, 70), "green": (55, 70, 35)}
NOISE_SIGMA = {"day": 2.2, "dusk": 3.5, "night": 5.0}


LIGHT_Q = 4  # the light layer (beams, glare) is drawn at quarter resolution


def _shake_sequence(rng: np.random.Generator, n: int, amp: int) -> np.ndarray:
    """Smooth small integer offsets (wind on the pole), (n, 2)."""
    if amp <= 0:
        return np.zeros((n, 2), np.int32)
    t = np.arange(n)[:, None]
    f = rng.uniform(0.02, 0.09, (3, 2))
    ph = rng.uniform(0, 2 * np.pi, (3, 2))
    w = np.sum(np.sin(t[:, None, :] * f[None] * 2 * np.pi / 2 + ph[None]), axis=1) / 3.0
    return np.clip(np.round(w * amp * 1.3), -amp, amp).astype(np.int32)


class FrameRenderer:
    """Renders frames of one scene.

    ``backgrounds``: an optional cache shared between scenes (the dataset export), keyed by
    lanes, size, lighting and one of two scenery variants, since the background costs seconds.
    """

    def __init__(self, scene: Scene, backgrounds: dict | None = None):
        self.scene = scene
        spec = scene.spec
        _, scenery_rng, fx_rng = streams(spec.seed)
        self.camera: Camera = scene.camera
        self.w, self.h = spec.size
        if backgrounds is None:
            self.bg = render_background(self.camera, spec.lighting, scenery_rng, margin=MARGIN)
        else:
            key = (spec.lanes, spec.size, spec.lighting, spec.seed % 2)
            if key not in backgrounds:
                backgrounds[key] = render_background(self.camera, spec.lighting, streams(spec.seed % 2)[1], margin=MARGIN)
            self.bg = backgrounds[key]
        self.light = LIGHT_LEVEL[spec.lighting]
        self.lighting = spec.lighting
        self.artists = {t.agent.vid: VehicleArtist(t.agent.body, render_plate(t.agent.plate), spec.lighting)  # type: ignore[arg-type]
                        for t in scene.tracks}
        n = spec.n_frames
        self.shake = _shake_sequence(fx_rng, n, spec.shake_px)
        sigma = NOISE_SIGMA[spec.lighting] * spec.noise
        pad = 64
        if sigma > 0:
            noise = fx_rng.normal(0.0, sigma, (self.h + pad, self.w + pad, 1)) + fx_rng.normal(0.0, sigma * 0.5, (self.h + pad, self.w + pad, 3))
            self.noise_pos = np.clip(noise, 0, 255).astype(np.uint8)
            self.noise_neg = np.clip(-noise, 0, 255).astype(np.uint8)
        else:
            self.noise_pos = self.noise_neg = None
        self.noise_offsets = fx_rng.integers(0, pad, (n, 2))
        strength = 38.0 if spec.lighting == "night" else 16.0
        self.beam_colour = tuple(float(c) * strength for c in (0.9, 0.97, 1.0))
        self.pad = pad

    # ------------------------------------------------------------------ poses
    @staticmethod
    def pose(track: Track, s: float) -> Pose:
        path = track.agent.path
        front = path.pos(s)
        back = path.pos(s - min(2.6, 0.55 * track.agent.length))
        d = front - back
        return Pose(front, d / (np.linalg.norm(d) + 1e-9))

    # ------------------------------------------------------------------ signal head
    def _signal_quads(self) -> dict[str, np.ndarray]:
        x, y, z = self.scene.layout.signal_pos
        hw, hh = SIGNAL_W / 2, SIGNAL_H / 2
        bw, bh = hw + 0.14, hh + 0.14

        def quad(yy: float, a: float, b: float, z0: float, z1: float) -> np.ndarray:
            return np.array([[x - a, yy, z1], [x + b, yy, z1], [x + b, yy, z0], [x - a, yy, z0]])

        return {
            "pole": quad(y + SIGNAL_D / 2, 0.06, 0.06, 0.0, z - hh),
            "backplate": quad(y + 0.02, bw, bw, z - bh, z + bh),
            "housing": quad(y, hw, hw, z - hh, z + hh),
            "top": np.array([[x - hw, y + SIGNAL_D, z + hh], [x + hw, y + SIGNAL_D, z + hh], [x + hw, y, z + hh], [x - hw, y, z + hh]]),
        }

    def signal_box(self, shift: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float, float, float]:
        q = self._signal_quads()
        pts = self.camera.project(np.vstack([q["backplate"], q["top"]]), shift)
        return (float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max()))

    def _draw_signal(self, img: np.ndarray, phase: Phase, shift: tuple[float, float], glows: list) -> None:
        q = self._signal_quads()
        lv = self.light
        proj = {k: np.round(self.camera.project(v, shift) * 4).astype(np.int32) for k, v in q.items()}
        cv2.fillConvexPoly(img, proj["pole"], tuple(int(c * lv) for c in (95, 98, 100)), cv2.LINE_8, 2)
        cv2.fillConvexPoly(img, proj["backplate"], tuple(int(c * lv) for c in (25, 25, 25)), cv2.LINE_AA, 2)
        cv2.fillConvexPoly(img, proj["top"], tuple(int(c * lv) for c in (40, 40, 40)), cv2.LINE_8, 2)
        cv2.fillConvexPoly(img, proj["housing"], tuple(int(c * lv) for c in (35, 45, 45)), cv2.LINE_8, 2)
        x, y, z = self.scene.layout.signal_pos
        for colour, dz in (("red", 0.32), ("amber", 0.0), ("green", -0.32)):
            c = np.array([[x, y - 0.005, z + dz], [x + LAMP_R, y - 0.005, z + dz]])
            p = self.camera.project(c, shift)
            r = float(np.linalg.norm(p[1] - p[0]))
            on = colour == phase
            col = LAMP_ON[colour] if on else tuple(int(v * max(lv, 0.5)) for v in LAMP_OFF[colour])
            centre = (int(round(p[0, 0] * 4)), int(round(p[0, 1] * 4)))
            cv2.circle(img, centre, int(round(r * 4)), col, -1, cv2.LINE_AA, 2)
            if on:
                cv2.circle(img, centre, int(round(r * 4 * 0.45)), tuple(min(255, v + 120) for v in col), -1, cv2.LINE_AA, 2)
                glows.append((p[0], r * (2.2 if self.lighting == "day" else 4.5), col, 0.35 if self.lighting == "day" else 0.9))

    # ------------------------------------------------------------------ frame
    def render(self, f: int) -> tuple[np.ndarray, list[dict]]:
        scene, cam = self.scene, self.camera
        dx, dy = (int(v) for v in self.shake[f])
        shift = (float(dx), float(dy))
        img = self.bg[MARGIN + dy : MARGIN + dy + self.h, MARGIN + dx : MARGIN + dx + self.w].copy()
        t = f / scene.spec.fps
        phase = scene.plan.phase(t)
        items = []  # (depth, kind, payload)
        active = []
        for tr in scene.tracks:
            st = tr.at(f)
            if st is not None:
                active.append((tr, st[1], self.pose(tr, st[0])))
        if active:
            fronts = np.array([[p.front[0], p.front[1], 0.0] for _, _, p in active])
            depths = cam.depth(fronts)
            fps = cam.project(fronts, shift)
            for (tr, v, pose), depth, fp in zip(active, depths, fps):
                body = tr.agent.body
                if depth < 2.0 or cam.focal * body.height / depth < 4:  # type: ignore[union-attr]
                    continue
                size = cam.focal * tr.agent.length / depth
                if not (-size - 50 < fp[0] < self.w + size + 50 and -size - 50 < fp[1] < self.h + size + 50):
                    continue
                items.append((float(depth), "veh", (tr, pose, v, fp)))
        sx, sy, sz = scene.layout.signal_pos
        items.append((float(cam.depth(np.array([[sx, sy, 0.0]]))[0]), "signal", None))
        items.sort(key=lambda it: -it[0])

        light = None
        if self.lighting != "day":
            # one quarter-resolution light layer: headlight pools on the road, then glare
            light = np.zeros((self.h // LIGHT_Q, self.w // LIGHT_Q, 3), np.uint8)
            for depth, kind, payload in items:
                if kind == "veh" and not payload[0].agent.lane.startswith("o"):
                    self._beam(light, payload[0], payload[1], shift)
        if self.lighting != "night":
            shade = tuple(int(c * self.light) for c in (50, 52, 55))
            for depth, kind, payload in items:
                if kind == "veh":
                    tr, pose, _, _ = payload
                    wp = self.artists[tr.agent.vid].shadow(pose)
                    wp[:, 0] += 0.25  # sun from the left behind the camera
                    poly = np.round(cam.project(wp, shift) * 4).astype(np.int32)
                    cv2.fillConvexPoly(img, poly, shade, cv2.LINE_AA, 2)

        glows: list = []
        drawn: list[tuple[Track, dict, Pose]] = []
        for depth, kind, payload in items:
            if kind == "signal":
                self._draw_signal(img, phase, shift, glows)
                continue
            tr, pose, v, fp = payload
            geo = self.artists[tr.agent.vid].draw(img, cam, pose, shift)
            geo["front_px"] = fp
            drawn.append((tr, geo, pose))
            if scene.spec.motion_blur and v > 1.0:
                self._blur(img, tr, pose, v, geo["hull"], shift)
            for hp in geo.get("headlights", []):
                glows.append((hp, cam.focal * 0.7 / depth, (230, 245, 255), 0.85 if self.lighting == "night" else 0.5))
            for tp in geo.get("taillights", []):
                glows.append((tp, cam.focal * 0.18 / depth, (40, 40, 255), 0.7))
        if light is not None:
            for centre, radius, colour, strength in glows:
                cv2.circle(light, (int(centre[0] / LIGHT_Q * 16), int(centre[1] / LIGHT_Q * 16)),
                           int(radius / LIGHT_Q * 0.45 * 16), tuple(c * strength for c in colour), -1, cv2.LINE_AA, 4)
            self._add_light(img, light, blur=2.0)
        else:
            for centre, radius, colour, strength in glows:
                add_glow(img, centre, radius, colour, strength)
        if self.noise_pos is not None:
            ox, oy = (int(v) for v in self.noise_offsets[f])
            cv2.add(img, self.noise_pos[oy : oy + self.h, ox : ox + self.w], dst=img)
            cv2.subtract(img, self.noise_neg[oy : oy + self.h, ox : ox + self.w], dst=img)
        return img, self._truth(drawn)

    def _beam(self, light: np.ndarray, tr: Track, pose: Pose, shift: tuple[float, float]) -> None:
        """Headlight light on the road ahead of an approaching vehicle, into the light layer."""
        hw = tr.agent.body.width / 2  # type: ignore[union-attr]
        # nested pools, brightest right in front of the bumper
        for reach, spread, level in ((16.0, 3.4, 0.4), (9.0, 2.4, 0.7), (4.5, 1.6, 1.0)):
            local = np.array([[-0.2, hw, 0.0], [-0.2, -hw, 0.0], [-reach, -spread, 0.0], [-reach, spread, 0.0]])
            world = to_world(local, pose)
            if (self.camera.depth(world) < 1.0).any():
                return
            poly = np.round(self.camera.project(world, shift) / LIGHT_Q * 16).astype(np.int32)
            cv2.fillConvexPoly(light, poly, tuple(c * level for c in self.beam_colour), cv2.LINE_8, 4)

    def _add_light(self, img: np.ndarray, light: np.ndarray, blur: float) -> None:
        """Soften the quarter-resolution light layer, scale it up and add it to the frame."""
        soft = cv2.GaussianBlur(light, (0, 0), blur)
        cv2.add(img, cv2.resize(soft, (self.w, self.h), interpolation=cv2.INTER_LINEAR), dst=img)

    def _blur(self, img: np.ndarray, tr: Track, pose: Pose, v: float, hull: np.ndarray, shift: tuple[float, float]) -> None:
        """Motion blur over the vehicle's box: a 1/8-frame exposure (5 ms at 25 fps), along its motion."""
        dt = 0.125 / self.scene.spec.fps
        a = np.array([[pose.front[0], pose.front[1], 0.5]])
        b = a.copy()
        b[0, :2] += pose.heading * v * dt
        d = self.camera.project(b, shift)[0] - self.camera.project(a, shift)[0]
        kx, ky = int(round(abs(d[0]))), int(round(abs(d[1])))
        if max(kx, ky) < 2:
            return
        x0, y0 = np.floor(hull.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(hull.max(axis=0)).astype(int) + 2
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.w), min(y1, self.h)
        if x1 - x0 < 3 or y1 - y0 < 3:
            return
        roi = img[y0:y1, x0:x1]
        cv2.blur(roi, (max(kx, 1), max(ky, 1)), dst=roi)

    def _truth(self, drawn: list[tuple[Track, dict, Pose]]) -> list[dict]:
        """Per drawn vehicle: box, visible fraction (occlusion and frame edges), plate quad."""
        q = 4
        ids = np.zeros((self.h // q + 1, self.w // q + 1), np.uint16)
        for k, (_, geo, _) in enumerate(drawn, 1):  # painter's order: nearer overwrite farther
            cv2.fillConvexPoly(ids, np.round(geo["hull"] / q * 16).astype(np.int32), k, cv2.LINE_8, 4)
        out = []
        for k, (tr, geo, pose) in enumerate(drawn, 1):
            hull = geo["hull"]
            area = cv2.contourArea(hull.astype(np.float32)) / (q * q)
            x0, y0 = np.floor(hull.min(axis=0) / q).astype(int)
            x1, y1 = np.ceil(hull.max(axis=0) / q).astype(int) + 1
            sub = ids[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)]
            seen = int(np.count_nonzero(sub == k))
            vis = min(1.0, seen / area) if area > 0 else 0.0
            if vis <= 0.0:
                continue
            bx0, by0 = np.clip(hull.min(axis=0), 0, [self.w, self.h])
            bx1, by1 = np.clip(hull.max(axis=0), 0, [self.w, self.h])
            if bx1 - bx0 < 1 or by1 - by0 < 1:
                continue
            entry = {
                "id": tr.agent.vid,
                "box": [round(float(bx0), 1), round(float(by0), 1), round(float(bx1), 1), round(float(by1), 1)],
                "vis": round(vis, 3),
                "front": [round(float(geo["front_px"][0]), 1), round(float(geo["front_px"][1]), 1)],
                "plate": None,
            }
            pq = geo["plate"]
            if pq is not None:
                px0, py0 = np.floor(pq.min(axis=0) / q).astype(int)
                px1, py1 = np.ceil(pq.max(axis=0) / q).astype(int) + 1
                inside = (pq[:, 0] >= 0).all() and (pq[:, 1] >= 0).all() and (pq[:, 0] < self.w).all() and (pq[:, 1] < self.h).all()
                psub = ids[max(py0, 0) : max(py1, 0), max(px0, 0) : max(px1, 0)]
                pvis = float(np.count_nonzero(psub == k)) / max(psub.size, 1) if inside else 0.0
                entry["plate"] = [[round(float(x), 1), round(float(y), 1)] for x, y in pq]
                entry["plate_side"] = geo["plate_side"]
                entry["plate_vis"] = round(min(pvis, 1.0), 3)
            out.append(entry)
        return out
