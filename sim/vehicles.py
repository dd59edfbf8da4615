"""Vehicle bodies: classes, sizes, colours, and the 3-D parts they are drawn from.

A body is a list of frusta (a box whose top may be smaller than its bottom) in the vehicle's
own frame: ``a`` metres back from the front bumper, ``b`` metres to the vehicle's right,
``z`` metres up. Details (lights, grille, windows, plate) are quads on a part's face.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLASSES = ("car", "van", "truck", "bus", "motorcycle")
CLASS_SHARE = (0.56, 0.24, 0.07, 0.05, 0.08)

# name, BGR, weight
COLOURS: tuple[tuple[str, tuple[int, int, int], float], ...] = (
    ("white", (235, 236, 236), 0.22),
    ("black", (28, 28, 30), 0.17),
    ("silver", (190, 188, 185), 0.15),
    ("grey", (110, 110, 112), 0.14),
    ("blue", (150, 70, 30), 0.09),
    ("red", (35, 35, 180), 0.09),
    ("dark blue", (85, 40, 25), 0.04),
    ("green", (55, 95, 40), 0.03),
    ("beige", (150, 185, 205), 0.03),
    ("yellow", (30, 190, 235), 0.02),
    ("orange", (30, 110, 230), 0.02),
)

# face indices of a frustum
FRONT, REAR, LEFT, RIGHT, TOP, BOTTOM = range(6)
FACES = np.array([[0, 1, 5, 4], [3, 7, 6, 2], [0, 4, 7, 3], [1, 2, 6, 5], [4, 5, 6, 7], [0, 3, 2, 1]])

# material ids
BODY, GLASS, DARK, TYRE, LIGHT_W, LIGHT_R, PLATE, SKIN, CARGO, CHROME, SHINE = range(11)


@dataclass
class Part:
    a0: float
    a1: float
    w0: float  # half width at the bottom
    z0: float
    z1: float
    w1: float | None = None  # half width at the top (default w0)
    a0t: float | None = None  # front edge at the top (default a0)
    a1t: float | None = None
    material: int = BODY
    glass_faces: tuple[int, ...] = ()  # faces drawn with an inset window
    level: int = 1  # vertical stacking: draw lower levels first
    b_off: float = 0.0  # sideways offset of the whole part (wheels)

    def corners(self) -> np.ndarray:
        w1 = self.w0 if self.w1 is None else self.w1
        a0t = self.a0 if self.a0t is None else self.a0t
        a1t = self.a1 if self.a1t is None else self.a1t
        return np.array([
            [self.a0, -self.w0, self.z0], [self.a0, self.w0, self.z0], [self.a1, self.w0, self.z0], [self.a1, -self.w0, self.z0],
            [a0t, -w1, self.z1], [a0t, w1, self.z1], [a1t, w1, self.z1], [a1t, -w1, self.z1],
        ]) + np.array([0.0, self.b_off, 0.0])


@dataclass
class Detail:
    part: int
    face: int
    quad: np.ndarray  # (4, 3) local points
    material: int


@dataclass
class Body:
    vclass: str
    length: float
    width: float
    height: float
    colour_name: str
    colour: tuple[int, int, int]
    parts: list[Part]
    details: list[Detail] = field(default_factory=list)
    front_plate: np.ndarray | None = None  # (4,3) local corners TL, TR, BR, BL as seen from the front
    rear_plate: np.ndarray | None = None
    headlights: list[np.ndarray] = field(default_factory=list)  # local centres
    taillights: list[np.ndarray] = field(default_factory=list)


def _quad_front(a: float, b0: float, b1: float, z0: float, z1: float) -> np.ndarray:
    """A quad on a front face (constant a), corners TL, TR, BR, BL seen from in front.

    Seen from in front of the vehicle, its right side (+b) is on the viewer's left.
    """
    return np.array([[a, b1, z1], [a, b0, z1], [a, b0, z0], [a, b1, z0]])


def _quad_rear(a: float, b0: float, b1: float, z0: float, z1: float) -> np.ndarray:
    return np.array([[a, b0, z1], [a, b1, z1], [a, b1, z0], [a, b0, z0]])


def plate_size(region: str) -> tuple[float, float]:
    return (0.305, 0.152) if region == "us" else (0.52, 0.11)


def make_body(rng: np.random.Generator, vclass: str, plate_region: str) -> Body:
    names = [c[0] for c in COLOURS]
    weights = np.array([c[2] for c in COLOURS])
    if vclass == "bus":
        ci = int(rng.choice([0, 9, 4, 5], p=[0.4, 0.3, 0.15, 0.15]))
    else:
        ci = int(rng.choice(len(COLOURS), p=weights / weights.sum()))
    colour_name, colour = names[ci], COLOURS[ci][1]
    u = rng.uniform
    parts: list[Part] = []
    details: list[Detail] = []
    pw, ph = plate_size(plate_region)
    headlights: list[np.ndarray] = []
    taillights: list[np.ndarray] = []
    if vclass in ("car", "van"):
        if vclass == "car":
            L, W, H = u(4.1, 4.9), u(1.72, 1.86), u(1.40, 1.52)
            belt, clear = u(0.88, 0.98), 0.28
            c0, c1, t0, t1 = u(1.25, 1.5), L - u(0.45, 0.9), u(2.0, 2.3), L - u(1.0, 1.4)
        else:  # van / SUV
            L, W, H = u(4.5, 5.3), u(1.86, 2.0), u(1.68, 2.05)
            belt, clear = u(1.0, 1.12), 0.36
            c0, c1, t0, t1 = u(0.95, 1.2), L - 0.12, u(1.45, 1.7), L - 0.3
        hw = W / 2
        # lower body with a sloping nose and tail, then the greenhouse
        parts.append(Part(0.0, L, hw, clear, belt, w1=hw - 0.03, a0t=0.22 if vclass == "car" else 0.12,
                          a1t=L - (0.15 if vclass == "car" else 0.06), level=1))
        parts.append(Part(c0, c1, hw - 0.06, belt, H, w1=hw - 0.2, a0t=t0, a1t=t1, level=2,
                          glass_faces=(FRONT, REAR, LEFT, RIGHT)))
        # B-pillars over the side glass, a sheen on the bonnet
        for sgn, face in ((-1, LEFT), (1, RIGHT)):
            pts = []
            for z, a_lo, a_hi, half in ((belt, c0, c1, hw - 0.06), (H, t0, t1, hw - 0.2)):
                mid = 0.5 * (a_lo + a_hi) - 0.1
                pts.append((mid, sgn * (half + 0.005), z))
                pts.append((mid + 0.12, sgn * (half + 0.005), z))
            (a0_, b0_, z0_), (a1_, b1_, _), (a2_, b2_, z2_), (a3_, b3_, _) = pts
            details.append(Detail(1, face, np.array([[a2_, b2_, z2_], [a3_, b3_, z2_], [a1_, b1_, z0_], [a0_, b0_, z0_]]), BODY))
        details.append(Detail(0, TOP, np.array([[0.4, -hw * 0.45, belt + 0.003], [0.4, hw * 0.45, belt + 0.003],
                                                [c0 - 0.15, hw * 0.55, belt + 0.003], [c0 - 0.15, -hw * 0.55, belt + 0.003]]), SHINE))
        zl0, zl1 = belt - 0.26, belt - 0.1
        for sgn in (-1, 1):
            b0, b1 = sgn * (hw - 0.12), sgn * (hw - 0.42)
            details.append(Detail(0, FRONT, _quad_front(0.0, min(b0, b1), max(b0, b1), zl0, zl1), LIGHT_W))
            headlights.append(np.array([0.0, sgn * (hw - 0.27), (zl0 + zl1) / 2]))
            details.append(Detail(0, REAR, _quad_rear(L, min(b0, b1), max(b0, b1), zl0, zl1), LIGHT_R))
            taillights.append(np.array([L, sgn * (hw - 0.27), (zl0 + zl1) / 2]))
        details.append(Detail(0, FRONT, _quad_front(0.0, -hw + 0.45, hw - 0.45, zl0 - 0.02, zl1), DARK))
        # bumper strip along the bottom of the nose
        details.append(Detail(0, FRONT, _quad_front(0.0, -hw + 0.02, hw - 0.02, clear, clear + 0.06), DARK))
        pz = clear + 0.07
        nose = 0.22 if vclass == "car" else 0.12
        for d in details:  # sit the nose details on the sloping front face
            if d.part == 0 and d.face == FRONT:
                d.quad[:, 0] = nose * (d.quad[:, 2] - clear) / (belt - clear) - 0.01
        wheel_r = 0.33 if vclass == "car" else 0.38
        axles = (0.85, L - 0.9)
    elif vclass == "truck":
        L, W, H = u(7.0, 9.5), 2.45, u(3.2, 3.7)
        hw = W / 2
        cab = u(1.9, 2.3)
        parts.append(Part(0.0, L, hw - 0.15, 0.45, 1.0, material=DARK, level=0))
        parts.append(Part(cab + 0.25, L, hw, 1.0, H, material=CARGO, level=1))
        parts.append(Part(0.0, cab, hw, 0.45, 1.55, w1=hw - 0.02, level=1))
        parts.append(Part(0.05, cab, hw - 0.03, 1.55, H - 0.35, w1=hw - 0.12, a0t=0.25, level=2, glass_faces=(FRONT, LEFT, RIGHT)))
        for sgn in (-1, 1):
            details.append(Detail(2, FRONT, _quad_front(0.0, min(sgn * (hw - 0.1), sgn * (hw - 0.4)), max(sgn * (hw - 0.1), sgn * (hw - 0.4)), 0.75, 0.92), LIGHT_W))
            headlights.append(np.array([0.0, sgn * (hw - 0.25), 0.83]))
            taillights.append(np.array([L, sgn * (hw - 0.2), 1.05]))
        details.append(Detail(2, FRONT, _quad_front(0.0, -hw + 0.5, hw - 0.5, 0.95, 1.45), CHROME))
        pz = 0.5
        wheel_r = 0.5
        axles = (0.9, L - 1.3, L - 2.4)
    elif vclass == "bus":
        L, W, H = u(10.5, 12.2), 2.5, u(3.0, 3.2)
        hw = W / 2
        parts.append(Part(0.0, L, hw, 0.3, 1.15, level=1))
        parts.append(Part(0.0, L, hw, 1.15, H - 0.25, level=2, glass_faces=(FRONT, REAR, LEFT, RIGHT)))
        parts.append(Part(0.1, L - 0.1, hw - 0.05, H - 0.25, H, w1=hw - 0.25, level=3))
        for sgn in (-1, 1):
            details.append(Detail(0, FRONT, _quad_front(0.0, min(sgn * (hw - 0.12), sgn * (hw - 0.45)), max(sgn * (hw - 0.12), sgn * (hw - 0.45)), 0.55, 0.72), LIGHT_W))
            headlights.append(np.array([0.0, sgn * (hw - 0.28), 0.63]))
            taillights.append(np.array([L, sgn * (hw - 0.2), 0.8]))
        pz = 0.42
        wheel_r = 0.5
        axles = (2.5, L - 3.0)
    else:  # motorcycle
        L, W, H = u(1.9, 2.2), 0.8, u(1.6, 1.8)
        parts.append(Part(0.0, 0.62, 0.06, 0.0, 0.62, material=TYRE, level=0))
        parts.append(Part(L - 0.62, L, 0.07, 0.0, 0.62, material=TYRE, level=0))
        parts.append(Part(0.25, L - 0.3, 0.22, 0.35, 0.95, w1=0.18, level=1))
        parts.append(Part(0.85, 1.4, 0.23, 0.95, 1.5, w1=0.2, a0t=0.95, material=DARK, level=2))
        parts.append(Part(0.92, 1.22, 0.14, 1.5, 1.8, w1=0.12, material=SKIN, level=3))
        details.append(Detail(2, FRONT, _quad_front(0.25, -0.09, 0.09, 0.72, 0.86), LIGHT_W))
        headlights.append(np.array([0.25, 0.0, 0.79]))
        taillights.append(np.array([L - 0.3, 0.0, 0.8]))
        hw = 0.4
        pz = None
        wheel_r = 0.0
        axles = ()
    # wheels: short tyre boxes at each axle on both sides, drawn first (level 0)
    for ax in axles:
        for sgn in (-1, 1):
            b_out, b_in = sgn * (hw - 0.02), sgn * (hw - 0.28)
            parts.insert(0, Part(ax - wheel_r, ax + wheel_r, 0.13, 0.0, 2 * wheel_r, material=TYRE,
                                 level=0, b_off=(b_out + b_in) / 2))
            for d in details:
                d.part += 1
    front_plate = rear_plate = None
    if pz is not None:
        front_plate = _quad_front(-0.01, -pw / 2, pw / 2, pz, pz + ph)
        if vclass in ("car", "van"):
            front_plate[:, 0] = nose * (front_plate[:, 2] - clear) / (belt - clear) - 0.015
        rear_plate = _quad_rear(L + 0.01, -pw / 2, pw / 2, pz + 0.1, pz + 0.1 + ph)
    elif vclass == "motorcycle":
        rear_plate = _quad_rear(L - 0.25, -0.09, 0.09, 0.55, 0.55 + 0.13)
    return Body(vclass, L, W, H, colour_name, colour, parts, details, front_plate, rear_plate, headlights, taillights)


def local_corners(body: Body) -> np.ndarray:
    """(P, 8, 3) corners of every part."""
    return np.stack([p.corners() for p in body.parts])
