"""Drawing one vehicle (or the signal head) into a frame from its projected 3-D parts."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import Camera
from .plates import PlatePyramid
from .vehicles import (
    BODY, BOTTOM, CARGO, CHROME, DARK, FACES, FRONT, GLASS, LEFT, LIGHT_R, LIGHT_W, PLATE, REAR, RIGHT,
    SHINE, SKIN, TOP, TYRE, Body, local_corners,
)

LIGHT_LEVEL = {"day": 1.0, "dusk": 0.5, "night": 0.2}
FACE_SHADE = {FRONT: 0.86, REAR: 0.8, LEFT: 0.66, RIGHT: 0.74, TOP: 1.0, BOTTOM: 0.3}


@dataclass
class Pose:
    front: np.ndarray  # (2,) ground point under the middle of the front bumper
    heading: np.ndarray  # (2,) unit direction of travel


def to_world(local: np.ndarray, pose: Pose) -> np.ndarray:
    """Vehicle-frame points (..., 3) (a back, b right, z up) -> world (..., 3)."""
    h = pose.heading
    right = np.array([h[1], -h[0]])
    xy = pose.front - local[..., :1] * h + local[..., 1:2] * right
    return np.concatenate([xy, local[..., 2:3]], axis=-1)


def _glow_sprite(size: int = 65) -> np.ndarray:
    r = np.linspace(-1, 1, size)
    d2 = r[None, :] ** 2 + r[:, None] ** 2
    return np.exp(-d2 * 6.0).astype(np.float32)


GLOW = _glow_sprite()


def add_glow(img: np.ndarray, centre: np.ndarray, radius: float, colour: tuple[float, float, float], strength: float) -> None:
    """Additive soft light (headlights, lit signal lamps)."""
    r = int(max(radius, 2))
    x, y = int(round(centre[0])), int(round(centre[1]))
    h, w = img.shape[:2]
    x0, y0, x1, y1 = x - r, y - r, x + r + 1, y + r + 1
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    spr = cv2.resize(GLOW, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    spr = spr[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    add = (spr[..., None] * (np.array(colour, np.float32) * strength)).astype(np.uint8)
    roi = img[cy0:cy1, cx0:cx1]
    cv2.add(roi, add, dst=roi)


class VehicleArtist:
    """Per-vehicle precomputation (all local points, plate pyramid, colours) and drawing.

    Every point a frame needs (part corners, window insets, lights, plates, shadow) is kept in
    one local array so a frame costs one transform and one projection per vehicle.
    """

    def __init__(self, body: Body, plate_img: np.ndarray | None, lighting: str):
        self.body = body
        self.lighting = lighting
        self.light = LIGHT_LEVEL[lighting]
        if plate_img is not None:
            # plates are retro-reflective and lit by the camera's IR flash at night
            pl = 1.0 if lighting == "day" else (0.8 if lighting == "dusk" else 0.62)
            plate_img = np.clip(plate_img.astype(np.float32) * pl, 0, 255).astype(np.uint8)
            self.plate = PlatePyramid(plate_img)
        else:
            self.plate = None
        corners = local_corners(body)  # (P, 8, 3)
        self.n_parts = P = corners.shape[0]
        self.levels = np.array([p.level for p in body.parts])
        chunks = [corners.reshape(-1, 3)]
        n = P * 8
        self.glass: dict[tuple[int, int], int] = {}  # (part, face) -> start index of its inset quad
        for pi, part in enumerate(body.parts):
            for f in part.glass_faces:
                quad = corners[pi, FACES[f]]
                c = quad.mean(axis=0)
                # shrink in the face plane: along a for side faces, along b for front/rear
                k = np.array([0.86, 1.0, 0.8]) if f in (LEFT, RIGHT) else np.array([1.0, 0.88, 0.82])
                chunks.append(c + (quad - c) * k)
                self.glass[(pi, f)] = n
                n += 4
        self.detail_idx = []
        for d in body.details:
            chunks.append(d.quad)
            self.detail_idx.append(n)
            n += 4
        self.plate_idx: list[tuple[str, int]] = []
        for side, quad in (("front", body.front_plate), ("rear", body.rear_plate)):
            if quad is not None:
                chunks.append(quad)
                self.plate_idx.append((side, n))
                n += 4
        self.head_idx = (n, n + len(body.headlights))
        chunks.extend(np.array(body.headlights).reshape(-1, 3))
        n += len(body.headlights)
        self.tail_idx = (n, n + len(body.taillights))
        chunks.extend(np.array(body.taillights).reshape(-1, 3))
        n += len(body.taillights)
        # outward face normals and face/part centres in the vehicle frame, for culling and order
        V = corners[:, FACES]  # (P, 6, 4, 3)
        nrm = np.cross(V[:, :, 1] - V[:, :, 0], V[:, :, 3] - V[:, :, 0])
        fc = V.mean(axis=2)
        pc = corners.mean(axis=1)[:, None, :]
        sign = np.sign(np.einsum("pfk,pfk->pf", nrm, fc - pc))
        sign[sign == 0] = 1
        self.normals = (nrm * sign[..., None]).reshape(-1, 3)
        self.fc_idx = n
        chunks.append(fc.reshape(-1, 3))
        n += P * 6
        self.pc_idx = n
        chunks.append(pc.reshape(-1, 3))
        n += P
        L, W = body.length, body.width
        self.shadow_idx = n
        chunks.append(np.array([[-0.15, -W / 2 - 0.12, 0], [-0.15, W / 2 + 0.12, 0],
                                [L + 0.1, W / 2 + 0.12, 0], [L + 0.1, -W / 2 - 0.12, 0]]))
        n += 4
        self.local = np.vstack([np.asarray(c, np.float64).reshape(-1, 3) for c in chunks])
        base = {
            BODY: np.array(body.colour, np.float32),
            GLASS: np.array([62, 52, 44], np.float32),
            DARK: np.array([32, 32, 34], np.float32),
            TYRE: np.array([22, 22, 24], np.float32),
            CARGO: np.array([228, 230, 232], np.float32) if body.colour_name != "white" else np.array([200, 205, 210], np.float32),
            CHROME: np.array([150, 150, 155], np.float32),
            SKIN: np.array([40, 40, 45], np.float32),
            LIGHT_W: np.array([225, 232, 235], np.float32),
            LIGHT_R: np.array([30, 30, 170], np.float32),
            SHINE: np.minimum(np.array(body.colour, np.float32) * 1.07 + 10, 255),
        }
        self.colours: dict[tuple[int, int], tuple[int, int, int]] = {}
        for m, c0 in base.items():
            for f in range(6):
                c = c0 * FACE_SHADE[f] * self.light
                if m == GLASS and f == TOP:
                    c = c * 1.2
                if m == LIGHT_W and lighting != "day":
                    c = np.array([250, 252, 255])
                if m == LIGHT_R and lighting != "day":
                    c = np.array([70, 70, 255])
                self.colours[(m, f)] = tuple(int(min(255, x)) for x in c)

    def shadow(self, pose: Pose) -> np.ndarray:
        """World footprint of the shadow (4, 3)."""
        return to_world(self.local[self.shadow_idx : self.shadow_idx + 4], pose)

    def draw(self, img: np.ndarray, camera: Camera, pose: Pose, shift: tuple[float, float]) -> dict:
        """Draw; returns projected geometry: hull (pixels), plate quad and side, lights."""
        h = pose.heading
        # vehicle frame -> camera frame in one product: a back (-heading), b right, z up
        M = np.array([[-h[0], -h[1], 0.0], [h[1], -h[0], 0.0], [0.0, 0.0, 1.0]])
        MR = M @ camera.R.T
        t = (np.array([pose.front[0], pose.front[1], 0.0]) - camera.position) @ camera.R.T
        pc_all = self.local @ MR + t
        z = np.maximum(pc_all[:, 2:3], 1e-3)
        pix_all = pc_all[:, :2] * (camera.focal / z) + (camera.cx + shift[0], camera.cy + shift[1])
        P = self.n_parts
        fc = pc_all[self.fc_idx : self.fc_idx + P * 6]
        visible = (np.einsum("nk,nk->n", self.normals @ MR, fc) < -1e-9).reshape(P, 6)
        depth = pc_all[self.pc_idx : self.pc_idx + P, 2]
        order = np.lexsort((-depth, self.levels))
        ipix = np.round(pix_all * 4).astype(np.int32)  # 2 fractional bits for fillConvexPoly
        parts = self.body.parts
        colours = self.colours
        glass = self.glass
        for p in order:
            mat = parts[p].material
            base = p * 8
            for f in np.flatnonzero(visible[p]):
                cv2.fillConvexPoly(img, ipix[base + FACES[f]], colours[(mat, f)], cv2.LINE_8, 2)
                g = glass.get((p, f))
                if g is not None:
                    cv2.fillConvexPoly(img, ipix[g : g + 4], colours[(GLASS, f)], cv2.LINE_8, 2)
        for d, i in zip(self.body.details, self.detail_idx):
            if visible[d.part, d.face]:
                cv2.fillConvexPoly(img, ipix[i : i + 4], colours[(d.material, d.face)], cv2.LINE_8, 2)
        out: dict = {"hull": cv2.convexHull(pix_all[: P * 8].astype(np.float32)).reshape(-1, 2),
                     "plate": None, "plate_side": None}
        # the plate facing the camera: front for approaching vehicles, rear for leaving ones
        fwd_cam = np.array([-1.0, 0.0, 0.0]) @ MR  # the vehicle's forward direction, camera frame
        for side, i in self.plate_idx:
            centre = pc_all[i : i + 4].mean(axis=0)
            facing = -np.dot(fwd_cam, centre) if side == "front" else np.dot(fwd_cam, centre)
            if facing <= 0:
                continue
            q = pix_all[i : i + 4]
            if self.plate is not None:
                self._warp_plate(img, q)
            out["plate"], out["plate_side"] = q, side
            break
        if self.lighting != "day":
            a, b = self.head_idx
            out["headlights"] = [pix_all[i] for i in range(a, b) if np.dot(fwd_cam, pc_all[i]) < 0]
            a, b = self.tail_idx
            out["taillights"] = [pix_all[i] for i in range(a, b) if np.dot(fwd_cam, pc_all[i]) > 0]
        return out

    def _warp_plate(self, img: np.ndarray, quad: np.ndarray) -> None:
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 1
        H, W = img.shape[:2]
        if x1 <= 0 or y1 <= 0 or x0 >= W or y0 >= H or x1 - x0 < 2:
            return
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        width = float(np.linalg.norm(quad[1] - quad[0]))
        src = self.plate.level_for(width)  # type: ignore[union-attr]
        sh, sw = src.shape[:2]
        s = np.float32([[0, 0], [sw, 0], [sw, sh], [0, sh]])
        d = (quad - [cx0, cy0]).astype(np.float32)
        M = cv2.getPerspectiveTransform(s, d)
        roi = img[cy0:cy1, cx0:cx1]
        cv2.warpPerspective(src, M, (cx1 - cx0, cy1 - cy0), dst=roi, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_TRANSPARENT)
