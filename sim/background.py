"""The static part of a frame (road, markings, kerbs, facades, sky), rendered once per scene.

Every pixel's ray is intersected with the ground and the two facade planes, and the surface
is shaded procedurally in world coordinates, at 2x supersampling; perspective, markings and
texture scale come out right without a top-down map.
"""

from __future__ import annotations

import cv2
import numpy as np

from .geometry import (
    CROSS_STREET,
    CROSSWALK,
    LANE_W,
    MEDIAN_W,
    SIDEWALK_W,
    STOP_LINE_W,
    STOP_Y,
    Camera,
)
from .spec import Lighting

BUILDING_H = 14.0
FACADE_GAP = 0.3  # facades stand this far behind the sidewalk


def _noise_tile(rng: np.random.Generator, size: int = 256, blur: float = 1.2) -> np.ndarray:
    tile = rng.standard_normal((size, size)).astype(np.float32)
    big = cv2.GaussianBlur(np.tile(tile, (3, 3)), (0, 0), blur)  # blur a 3x3 tiling: seamless wrap
    tile = big[size : 2 * size, size : 2 * size].copy()
    return tile / (tile.std() + 1e-6)


def _sample(tile: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    n = tile.shape[0]
    return cv2.remap(tile, np.mod(u, n).astype(np.float32), np.mod(v, n).astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def _dashed(y: np.ndarray, dash: float, gap: float) -> np.ndarray:
    return np.mod(y, dash + gap) < dash


def render_background(camera: Camera, lighting: Lighting, rng: np.random.Generator, margin: int = 0) -> np.ndarray:
    """BGR uint8 image of the empty scene, ``margin`` px wider on every side (for shake)."""
    w, h = camera.size
    ss = 2
    W, H = (w + 2 * margin) * ss, (h + 2 * margin) * ss
    us = (np.arange(W, dtype=np.float64) + 0.5) / ss - margin
    vs = (np.arange(H, dtype=np.float64) + 0.5) / ss - margin
    uu, vv = np.meshgrid(us, vs)
    rays_c = np.stack([(uu - camera.cx) / camera.focal, (vv - camera.cy) / camera.focal, np.ones_like(uu)], -1)
    rays = rays_c @ camera.R  # world directions
    C = camera.position
    rx, ry, rz = rays[..., 0], rays[..., 1], rays[..., 2]
    lay = camera.layout
    inf = np.full(rz.shape, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(rz < -1e-9, -C[2] / rz, inf)
        x_left = lay.kerb_x - SIDEWALK_W - FACADE_GAP
        x_right = lay.far_kerb_x + SIDEWALK_W + FACADE_GAP
        t_left = np.where(rx < -1e-9, (x_left - C[0]) / rx, inf)
        t_right = np.where(rx > 1e-9, (x_right - C[0]) / rx, inf)

    def facade_hit(t: np.ndarray) -> np.ndarray:
        z = C[2] + t * rz
        y = C[1] + t * ry
        return np.isfinite(t) & (z >= 0) & (z <= BUILDING_H) & (y > STOP_Y + 1.0)

    t_left = np.where(facade_hit(t_left), t_left, inf)
    t_right = np.where(facade_hit(t_right), t_right, inf)
    t_best = np.minimum(t_ground, np.minimum(t_left, t_right))
    hit_ground = np.isfinite(t_ground) & (t_ground <= t_best)
    hit_left = np.isfinite(t_left) & (t_left <= t_best) & ~hit_ground
    hit_right = np.isfinite(t_right) & (t_right <= t_best) & ~hit_ground & ~hit_left

    tile = _noise_tile(rng)
    fine = _noise_tile(rng, blur=0.7)
    img = np.zeros((H, W, 3), np.float32)

    # --- sky (rarely in view)
    sky = np.array([200, 180, 160], np.float32)
    img[:] = sky

    # --- ground
    t = np.where(hit_ground, t_ground, 0.0)
    X = C[0] + t * rx
    Y = C[1] + t * ry
    asphalt = np.array([92, 94, 98], np.float32)
    concrete = np.array([150, 156, 160], np.float32)
    verge = np.array([70, 110, 95], np.float32)
    white = np.array([225, 230, 232], np.float32)
    yellow = np.array([60, 185, 215], np.float32)
    kerb = np.array([175, 180, 182], np.float32)

    in_cross = (Y >= CROSS_STREET[0]) & (Y <= CROSS_STREET[1])
    road = ((X >= lay.kerb_x) & (X <= lay.far_kerb_x)) | in_cross
    sidewalk = ~road & (X >= lay.kerb_x - SIDEWALK_W) & (X <= lay.far_kerb_x + SIDEWALK_W)
    base = np.where(road[..., None], asphalt, np.where(sidewalk[..., None], concrete, verge))
    n1 = _sample(tile, X * 9.0, Y * 9.0)
    n2 = _sample(fine, X * 40.0, Y * 40.0)
    tex = 1.0 + 0.05 * n1 + 0.05 * n2
    # sidewalk slabs
    slab = sidewalk & ((np.mod(Y, 1.5) < 0.03) | (np.mod(X - lay.kerb_x, 1.5) < 0.03))
    tex = np.where(slab, tex * 0.8, tex)
    # darker tyre tracks along lane centres, oil drip in front of the stop line
    track = np.zeros_like(X)
    for i in range(lay.lanes):
        c = lay.lane_centre(i)
        for off in (-0.8, 0.8):
            track += np.exp(-((X - c - off) ** 2) / 0.08)
        track += 0.9 * np.exp(-((X - c) ** 2) / 0.25 - ((Y - STOP_Y - 3.5) ** 2) / 4.0)
    tex = tex * np.where(road, 1.0 - 0.08 * np.clip(track, 0, 1.5), 1.0)
    g = base * tex[..., None]

    paint = np.zeros(X.shape, bool)
    paint_y = np.zeros(X.shape, bool)
    approach = (X >= lay.kerb_x) & (X <= 0) & (Y > STOP_Y)
    # lane dividers: solid for the last 25 m, dashed before
    for i in range(1, lay.lanes):
        xd = lay.kerb_x + i * LANE_W
        near = np.abs(X - xd) < 0.075
        paint |= near & approach & ((Y < STOP_Y + 25) | _dashed(Y, 3.0, 6.0))
    # median: double yellow
    on_link = Y > CROSS_STREET[1]
    paint_y |= on_link & ((np.abs(X - 0.2) < 0.06) | (np.abs(X - MEDIAN_W + 0.2) < 0.06)) & ~((Y > CROSSWALK[0]) & (Y < CROSSWALK[1]))
    # opposing lane divider and edge lines
    xo = MEDIAN_W + LANE_W
    paint |= on_link & (np.abs(X - xo) < 0.075) & _dashed(Y, 3.0, 6.0) & (Y > CROSSWALK[1])
    paint |= on_link & (Y > CROSSWALK[1]) & ((np.abs(X - lay.kerb_x - 0.3) < 0.06) | (np.abs(X - lay.far_kerb_x + 0.3) < 0.06))
    # stop line
    paint |= (np.abs(Y - STOP_Y) < STOP_LINE_W / 2) & (X >= lay.kerb_x) & (X <= 0)
    # crosswalk: bars along the direction of travel
    cw = (Y >= CROSSWALK[0]) & (Y <= CROSSWALK[1]) & (X >= lay.kerb_x) & (X <= lay.far_kerb_x)
    paint |= cw & (np.mod(X - lay.kerb_x, 1.2) < 0.6)
    # straight / right arrows 6 m before the stop line (simple shaft + head)
    for i in range(lay.lanes):
        c = lay.lane_centre(i)
        ay = Y - (STOP_Y + 6.0)
        shaft = (np.abs(X - c) < 0.09) & (ay > 1.2) & (ay < 4.5)
        head = (ay >= 0) & (ay <= 1.2) & (np.abs(X - c) < 0.35 * ay)
        paint |= shaft | head
    wear = 0.85 + 0.15 * np.clip(0.5 + 0.5 * _sample(tile, X * 3.0, Y * 3.0), 0, 1)
    g = np.where(paint[..., None], white * wear[..., None], g)
    g = np.where(paint_y[..., None], yellow * wear[..., None], g)
    # kerb stones: a light strip at the kerb lines
    kerb_m = ~in_cross & ((np.abs(X - lay.kerb_x) < 0.15) | (np.abs(X - lay.far_kerb_x) < 0.15))
    g = np.where(kerb_m[..., None], kerb * tex[..., None], g)
    img = np.where(hit_ground[..., None], g, img)

    # --- facades: windows in a grid, a darker ground floor
    for hit, tt, tint in ((hit_left, t_left, np.array([120, 135, 150], np.float32)),
                          (hit_right, t_right, np.array([110, 120, 140], np.float32))):
        if not hit.any():
            continue
        tt = np.where(hit, tt, 0.0)
        Yf = C[1] + tt * ry
        Zf = C[2] + tt * rz
        bay = np.floor(Yf / 4.0)
        win = (np.mod(Yf, 4.0) > 1.0) & (np.mod(Yf, 4.0) < 3.0) & (np.mod(Zf, 3.2) > 1.0) & (np.mod(Zf, 3.2) < 2.6) & (Zf > 3.2)
        col = tint * (0.9 + 0.1 * np.sin(bay)[..., None])
        glass = np.array([95, 80, 70], np.float32)
        shop = (Zf < 3.0) & (np.mod(Yf, 8.0) > 1.0) & (np.mod(Yf, 8.0) < 6.5) & (Zf > 0.3)
        col = np.where(win[..., None] | shop[..., None], glass, col)
        img = np.where(hit[..., None], col, img)

    img = _apply_lighting(img, lighting, X, Y, hit_ground, camera)
    out = cv2.resize(np.clip(img, 0, 255).astype(np.uint8), (w + 2 * margin, h + 2 * margin), interpolation=cv2.INTER_AREA)
    return out


def _apply_lighting(img: np.ndarray, lighting: Lighting, X: np.ndarray, Y: np.ndarray,
                    ground: np.ndarray, camera: Camera) -> np.ndarray:
    if lighting == "day":
        return img
    lay = camera.layout
    if lighting == "dusk":
        scale, tint, lamp = 0.42, np.array([1.15, 0.95, 0.9], np.float32), 18.0
    else:
        scale, tint, lamp = 0.085, np.array([1.1, 1.0, 0.95], np.float32), 48.0
    out = img * scale * tint
    # sodium / LED street lamps on both sidewalks every 30 m
    pool = np.zeros(X.shape, np.float32)
    for lx in (lay.kerb_x - 0.8, lay.far_kerb_x + 0.8):
        for ly in np.arange(STOP_Y - 2.0, 200.0, 30.0):
            d2 = (X - lx) ** 2 + (Y - ly) ** 2
            pool += 1.0 / (1.0 + d2 / 30.0)
    pool = np.where(ground, pool, 0.25 * pool)
    warm = np.array([0.75, 0.9, 1.0], np.float32)
    return out + (img / 255.0) * (pool * lamp)[..., None] * warm * 2.2
