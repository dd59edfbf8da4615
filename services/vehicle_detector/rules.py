"""The red-light rule: a tracked vehicle whose front crosses the stop line while its signal group
is red, after the grace time, moving (not creeping), outside exempt zones; once per track."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from stopline.services.vehicle_detector.geometry import StopLine, distance_outside, front_point, in_polygon
from stopline.shared.config import CameraConfig
from stopline.shared.vision.detections import box_inside, box_iou

XYXY = tuple[float, float, float, float]


@dataclass
class Crossing:
    """A track's front passed the stop line in this frame (violation or not)."""

    track_id: int
    t: float  # interpolated crossing time, pipeline clock
    box: XYXY
    front: tuple[float, float]
    speed_px_s: float
    lane: str | None
    group: str
    exempt: str | None = None  # name of the exempt zone it crossed in
    growing: bool = False  # only its front moved: a box swelling over something passing, not a vehicle crossing


@dataclass
class _Track:
    history: deque = field(default_factory=lambda: deque(maxlen=64))  # (t, offset, box)
    crossed: bool = False
    seen_before_line: int = 0
    last_before: tuple[float, float] | None = None  # (t, offset) last seen before the line


class CrossingRule:
    """Finds stop-line crossings from tracked boxes; the caller checks the signal phase."""

    def __init__(self, camera: CameraConfig, scale: tuple[float, float] = (1.0, 1.0),
                 speed_window_s: float = 0.5, min_frames_before: int = 2, line_margin_px: float = 20.0,
                 stitch_s: float = 0.5, frame_size: tuple[int, int] | None = None):
        sx, sy = scale
        self.frame_size = frame_size  # of the frames the boxes come from; None: not known
        pts = [(x * sx, y * sy) for x, y in camera.stop_line]
        self.direction = camera.travel_direction
        self.line = StopLine(pts, self.direction, margin=line_margin_px)
        # which frame edges travel heads for: sign per axis, 0 within 15 degrees of the other axis
        tx, ty = (int(np.sign(v)) if abs(v) > np.sin(np.radians(15)) else 0 for v in self.line.direction)
        self._travel_signs = (tx, ty)
        self.lanes = [(ln.id, ln.signal_group, [(x * sx, y * sy) for x, y in ln.polygon]) for ln in camera.lanes]
        self.exempt = [(z.name, [(x * sx, y * sy) for x, y in z.polygon]) for z in camera.exempt_zones]
        self._lane_moves = [(ln.id, ln.signal_group, None, ln.movement) for ln in camera.lanes]
        self.speed_window_s = speed_window_s
        self.stitch_s = stitch_s
        self.successor: dict[int, int] = {}  # lost track -> the track that continues it
        self.min_frames_before = min_frames_before
        self._tracks: dict[int, _Track] = {}

    def lane_of(self, p: tuple[float, float], within: float = 0.0) -> tuple[str | None, str]:
        """The lane containing ``p``, else the nearest one less than ``within`` px away."""
        best, best_d = (None, "main"), within
        for lane_id, group, poly in self.lanes:
            d = distance_outside(p, poly)
            if d <= 0:
                return lane_id, group
            if d < best_d:
                best, best_d = (lane_id, group), d
        return best

    def _stitch(self, tid: int, box: XYXY, t: float, alive: set[int]) -> _Track:
        """A new track id on a box where a track was lost a moment ago is that vehicle again
        (the tracker switched ids, typically when a motion blob split or merged): carry its
        history over, so its approach before the line still counts and it is not flagged twice."""
        best, best_score = None, 0.3
        for old, tr in self._tracks.items():
            if old in alive or not tr.history or t - tr.history[-1][0] > self.stitch_s:
                continue
            last = tr.history[-1][2]
            score = max(box_iou(box, last), box_inside(box, last), box_inside(last, box))
            if score > best_score:
                best, best_score = old, score
        if best is None:
            return _Track()
        self.successor[best] = tid
        return self._tracks.pop(best)

    def resolve(self, track_id: int) -> int:
        """The track id a vehicle goes by now (after stitching / merging)."""
        seen = set()
        while track_id in self.successor and track_id not in seen:
            seen.add(track_id)
            track_id = self.successor[track_id]
        return track_id

    def update(self, t: float, tracks: dict[int, XYXY],
               earlier: dict[int, list[tuple[float, XYXY]]] | None = None) -> list[Crossing]:
        """Crossings in this frame. ``earlier``: where new tracks were seen before they started
        (``Tracker.earlier``); a vehicle first seen for sure past the line was still before it."""
        out: list[Crossing] = []
        alive = set(tracks)
        for tid, box in tracks.items():
            front = front_point(box, self.direction)
            tr = self._tracks.get(tid)
            if tr is None or (tr.seen_before_line == 0 and not tr.crossed and len(tr.history) < 15):
                # new, or young and only ever seen past the line: maybe a fragment of a vehicle
                # whose track was just lost
                old = self._stitch(tid, box, t, alive)
                if tr is None and not old.history:
                    for t_seen, b in (earlier or {}).get(tid, []):
                        self._observe(old, t_seen, b)
                if tr is None or old.history:
                    old.history.extend(tr.history if tr is not None else [])
                    tr = self._tracks[tid] = old
            off = self._observe(tr, t, box)
            if off < 0:
                continue
            if tr.crossed or tr.last_before is None or tr.seen_before_line < self.min_frames_before:
                continue
            if not self.line.covers(front):
                continue
            tr.crossed = True
            # time the front was exactly on the line, interpolated from its last position before
            t0, off0 = tr.last_before
            t_cross = t0 + (t - t0) * (-off0) / max(off - off0, 1e-9)
            lane, group = self.lane_of(front)
            if self.lanes and lane is None:
                # lanes are configured and this crossing is in none of them: a turning vehicle
                # clipping the line end, or a wide one (a bus) whose box corner sticks out past
                # its lane's edge. Try the box centre, then a lane within a tenth of the box.
                c = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                lane, group = self.lane_of(c)
                if lane is None:
                    lane, group = self.lane_of(front, within=self._lane_slack(box))
                if lane is None:
                    continue
            zone = next((name for name, poly in self.exempt if in_polygon(front, poly)), None)
            speed = self._speed(tr, t)
            out.append(Crossing(tid, t_cross, box, front, speed, lane, group, zone,
                                growing=self._only_front_moved(tr, t, speed)))
        return out

    def _observe(self, tr: _Track, t: float, box: XYXY) -> float:
        """Add a sighting to the track's history; its front's offset past the line."""
        off = self.line.offset(front_point(box, self.direction))
        tr.history.append((t, off, box))
        if off < 0:
            tr.seen_before_line += 1
            tr.last_before = (t, off)
        return off

    def _only_front_moved(self, tr: _Track, t: float, front_speed: float) -> bool:
        """Over the speed window the box's rear stayed put (under a quarter of the front's
        speed) while its front crossed: a waiting vehicle whose box swallowed cross traffic
        passing in front of it. A rear cut off by the frame edge proves nothing."""
        pts = [(ht, box) for ht, _, box in tr.history if t - ht <= self.speed_window_s + 1e-9]
        if len(pts) < 2 or front_speed <= 0 or pts[-1][0] <= pts[0][0]:
            return False
        (t0, b0), (t1, b1) = pts[0], pts[-1]
        if self._rear_cut_off(b0) or self._rear_cut_off(b1):
            return False
        back = -self.line.direction
        r0, r1 = (np.asarray(front_point(b, back)) for b in (b0, b1))
        rear_speed = float((r1 - r0) @ self.line.direction) / (t1 - t0)
        return rear_speed < 0.25 * front_speed

    def _rear_cut_off(self, box: XYXY, margin: float = 0.02) -> bool:
        if self.frame_size is None:
            return False
        w, h = self.frame_size
        dx, dy = self._travel_signs
        return bool((dx > 0 and box[0] <= w * margin) or (dx < 0 and box[2] >= w * (1 - margin))
                    or (dy > 0 and box[1] <= h * margin) or (dy < 0 and box[3] >= h * (1 - margin)))

    def _lane_slack(self, box: XYXY) -> float:
        """How far outside a lane a crossing's front may lie and still be that lane's: a tenth of
        the box, or half its width across the travel direction for a narrow one (a motorcycle
        riding on the lane's edge: part of it is in the lane)."""
        w, h = box[2] - box[0], box[3] - box[1]
        lat_x, lat_y = abs(self.line.lateral[0]), abs(self.line.lateral[1])
        across, along = w * lat_x + h * lat_y, w * lat_y + h * lat_x
        slack = 0.1 * min(w, h)
        return max(slack, 0.5 * across) if across < 0.6 * along else slack

    def _speed(self, tr: _Track, t: float) -> float:
        """Speed along the direction of travel (px/s) over the last ``speed_window_s``."""
        pts = [(ht, ho) for ht, ho, _ in tr.history if t - ht <= self.speed_window_s + 1e-9]
        if len(pts) < 2:
            pts = [(ht, ho) for ht, ho, _ in list(tr.history)[-2:]]
        if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
            return 0.0
        ts, offs = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
        return float(np.polyfit(ts - ts[0], offs, 1)[0]) if len(pts) > 2 else \
            float((offs[-1] - offs[0]) / (ts[-1] - ts[0]))

    def needs_turn_watch(self, c: Crossing) -> bool:
        """Could this crossing still become an exempt turn? (exempt zones exist and its lane
        allows turning, or lanes are not configured)"""
        if not self.exempt:
            return False
        movement = next((m for lane_id, _, _, m in self._lane_moves if lane_id == c.lane), None)
        return movement is None or movement != "straight"

    def retreated(self, c: Crossing, box: XYXY | None) -> bool:
        """The track's front went back behind the line after its crossing: vehicles do not
        reverse through a stop line, so the crossing was a blob merge (two vehicles seen as one
        for a moment), not this vehicle's."""
        if box is None:
            return False
        height = min(c.box[3] - c.box[1], c.box[2] - c.box[0])
        return self.line.offset(front_point(box, self.direction)) < -0.25 * height

    def turn_status(self, c: Crossing, box: XYXY | None, t: float) -> str | None:
        """After a crossing near an exempt zone: "exempt" once the vehicle is in the zone,
        "straight" once it has gone on along the travel direction, None while undecided.

        A right turn on red is slow and its front only reaches the zone a second or two after the
        line, while a red-light runner is quickly well past the line heading straight on."""
        if box is None:
            if t - c.t <= 1.0:
                return None
            # lost from a lane configured for right turns: turners leave the view through the
            # corner, so give the benefit of the doubt (a wrong fine is worse than a missed one);
            # with no lanes configured, a lost track shows no sign of a turn
            movement = next((m for lane_id, _, _, m in self._lane_moves if lane_id == c.lane), None)
            return "exempt" if movement is not None and "right" in movement else "straight"
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        points = [front_point(box, self.direction), (cx, box[3]), (cx, cy)]
        for name, poly in self.exempt:
            if any(in_polygon(p, poly) for p in points):
                return "exempt"
        past = self.line.offset(front_point(box, self.direction))
        height = max(box[3] - box[1], box[2] - box[0])
        c0 = ((c.box[0] + c.box[2]) / 2, (c.box[1] + c.box[3]) / 2)
        if past > 0.5 * height and self._heading_straight(np.array([cx - c0[0], cy - c0[1]])):
            return "straight"
        if self._front_out_of_view(box) and self._went_on_out_of_view(c.box, box):
            return "straight"
        if t - c.t > 4.0:
            return "straight"  # never reached the zone
        return None

    def _heading_straight(self, move: np.ndarray, max_deg: float = 20.0) -> bool:
        """``move`` points along the travel direction, within ``max_deg``."""
        n = float(np.hypot(*move))
        return n > 0 and float(move @ self.line.direction) / n > np.cos(np.radians(max_deg))

    def _front_out_of_view(self, box: XYXY, margin: float = 0.02) -> bool:
        """The box touches a frame edge the vehicle travels towards: its front is cut off, so
        neither its front point nor its centre moves with the vehicle any more."""
        if self.frame_size is None:
            return False
        w, h = self.frame_size
        dx, dy = self._travel_signs
        return bool((dx > 0 and box[2] >= w * (1 - margin)) or (dx < 0 and box[0] <= w * margin)
                    or (dy > 0 and box[3] >= h * (1 - margin)) or (dy < 0 and box[1] <= h * margin))

    def _rear(self, box: XYXY) -> np.ndarray:
        """The box's rear anchor: its edges facing away from travel (the corner for a diagonal),
        which stay in view when the front leaves the frame."""
        sx, sy = self._travel_signs
        cx, cy, hw, hh = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
        return np.array([cx - sx * hw, cy - sy * hh])

    def _went_on_out_of_view(self, at_cross: XYXY, box: XYXY) -> bool:
        """A vehicle whose front has left the frame went straight on: its rear moved a quarter of
        its size along the travel direction, heading within 20 degrees, and the front leaves the
        view well away from every exempt zone. (A big vehicle near the camera fills the bottom of
        the frame: its box stops growing at the edge, so its front point stays put and its centre
        drifts sideways; the half-box-past test can never hold for it.)"""
        size = min(at_cross[2] - at_cross[0], at_cross[3] - at_cross[1])
        move = self._rear(box) - self._rear(at_cross)
        if float(move @ self.line.direction) < 0.25 * size or not self._heading_straight(move):
            return False
        front = front_point(box, self.direction)
        return all(distance_outside(front, poly) > 0.5 * size for _, poly in self.exempt)

    def rearm(self, track_id: int) -> None:
        """Let this track cross again (its crossing was not its own vehicle's)."""
        tr = self._tracks.get(track_id)
        if tr is not None:  # it has to be seen before the line again to cross
            tr.crossed, tr.last_before, tr.seen_before_line = False, None, 0

    def forget(self, alive: set[int], t: float, keep_s: float = 5.0) -> None:
        """Drop state of tracks not seen for ``keep_s``."""
        for tid in list(self._tracks):
            tr = self._tracks[tid]
            if tid not in alive and tr.history and t - tr.history[-1][0] > keep_s:
                del self._tracks[tid]
        while len(self.successor) > 1000:
            del self.successor[next(iter(self.successor))]

