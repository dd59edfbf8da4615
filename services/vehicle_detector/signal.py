"""Signal phase per signal group, from the frame (roi), a fixed plan (schedule), a controller's
MQTT messages (mqtt) or a constant. Every provider answers ``phase(group)``,
``red_since(group)`` (the time the current red began, on the pipeline's clock) and
``amber_before_red(group)`` (how long the amber before the current red lasted, when it was
measured) after ``update(frame, t)`` has been called for the current frame.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter

import numpy as np

from stopline.shared.config import SignalConfig
from stopline.shared.vision.signal_lamp import SignalSmoother, State, classify_lamp


MAX_GAP_S = 0.5  # unknown readings between two phases that still count as one change


class SignalProvider:
    def __init__(self, config: SignalConfig):
        self.config = config
        self.groups = sorted({h.group for h in config.heads} | {"main"})
        self._phase: dict[str, State] = {}
        self._since: dict[str, float] = {}
        self._amber: dict[str, float | None] = {}  # the amber before the current red
        self._start_seen: dict[str, bool] = {}  # the current interval began with a seen change
        # the last known phase before the current interval: (phase, start, end, start seen)
        self._last_known: dict[str, tuple[str, float, float, bool]] = {}
        self._read_at: dict[str, float] = {}  # the last reading of the current phase

    def update(self, frame: np.ndarray | None, t: float) -> None:
        raise NotImplementedError

    def _set(self, group: str, phase: State, t: float) -> None:
        """A phase read at ``t``; a change starts a new interval. An amber is measured only when
        both its ends were seen: entered from another known phase and left for red, directly or
        across a gap of unknown readings (lamps switching) of at most ``MAX_GAP_S``. It is
        measured from its first reading to its last, never longer than it was: the benefit of
        the doubt (up to the time between two readings) goes to the driver."""
        prev = self._phase.get(group)
        if prev == phase:
            self._read_at[group] = t
            return
        if prev is not None and prev != "unknown":
            end = self._read_at.get(group, self._since[group])
            self._last_known[group] = (prev, self._since[group], end, self._start_seen.get(group, False))
        self._read_at[group] = t
        last = self._last_known.get(group)
        gap_ok = last is not None and t - last[2] <= MAX_GAP_S  # (no gap at all after a known phase)
        if phase != "unknown":
            self._start_seen[group] = gap_ok
        if phase == "red" and not (gap_ok and last[0] == "red"):  # (red, a gap, red: the same red)
            amber = gap_ok and last[0] == "amber" and last[3]  # type: ignore[index]
            self._amber[group] = last[2] - last[1] if amber else None  # type: ignore[index]
        self._phase[group] = phase
        self._since[group] = t

    def amber_before_red(self, group: str = "main") -> float | None:
        """Seconds of amber before the current red of ``group``; None when not red or not measured."""
        g = group if group in self._phase else "main"
        return self._amber.get(g) if self._phase.get(g) == "red" else None

    def phase(self, group: str = "main") -> State:
        return self._phase.get(group, self._phase.get("main", "unknown"))

    def red_since(self, group: str = "main") -> float | None:
        g = group if group in self._phase else "main"
        return self._since.get(g) if self._phase.get(g) == "red" else None

    def head_boxes(self, group: str = "main") -> list[tuple[float, float, float, float]]:
        return [tuple(map(float, h.roi.xyxy())) for h in self.config.heads if h.group == group] or \
               [tuple(map(float, h.roi.xyxy())) for h in self.config.heads]  # type: ignore[misc]


class RoiSignal(SignalProvider):
    """Reads each head's crop, smooths it over time, and votes the heads of each group.

    A group's red is only known to have begun when it was *seen* to turn red; if the stream
    starts in red, ``red_since`` is the first frame (time into red is then a lower bound).
    """

    def __init__(self, config: SignalConfig, frame_size: tuple[int, int] | None = None,
                 geometry_size: tuple[int, int] | None = None):
        super().__init__(config)
        self._smooth = {h.id: SignalSmoother(config.smoothing_frames) for h in config.heads}
        self.readings: dict[str, State] = {}
        self._scale = (1.0, 1.0)
        if frame_size and geometry_size and frame_size != geometry_size:
            self._scale = (frame_size[0] / geometry_size[0], frame_size[1] / geometry_size[1])

    def update(self, frame: np.ndarray | None, t: float) -> None:
        if frame is None:
            return
        sx, sy = self._scale
        per_group: dict[str, list[State]] = {}
        for head in self.config.heads:
            x1, y1, x2, y2 = head.roi.xyxy()
            crop = frame[int(y1 * sy):int(np.ceil(y2 * sy)), int(x1 * sx):int(np.ceil(x2 * sx))]
            raw = classify_lamp(crop, head.layout).state
            state = self._smooth[head.id].update(raw)
            self.readings[head.id] = state
            per_group.setdefault(head.group, []).append(state)
        for group, states in per_group.items():
            known = [s for s in states if s != "unknown"]
            if not known:
                self._set(group, "unknown", t)
                continue
            (top, n), *rest = Counter(known).most_common()
            # a tie between heads of one group is not a reading we can act on
            self._set(group, top if not rest or rest[0][1] < n else "unknown", t)
        if "main" not in per_group and per_group:
            first = sorted(per_group)[0]
            self._phase["main"], self._since["main"] = self._phase[first], self._since[first]
            self._amber["main"] = self._amber.get(first)


class ScheduleSignal(SignalProvider):
    """Fixed-time plan: green, amber, then red until the cycle ends; same for every group."""

    def update(self, frame: np.ndarray | None, t: float) -> None:
        s = self.config.schedule
        assert s is not None
        pos = (t + s.offset_s) % s.cycle_s
        start = t - pos
        if pos < s.green_s:
            phase, since = "green", start
        elif pos < s.green_s + s.amber_s:
            phase, since = "amber", start + s.green_s
        else:
            phase, since = "red", start + s.green_s + s.amber_s
        for g in self.groups:
            self._phase[g], self._since[g] = phase, since  # type: ignore[assignment]
            self._amber[g] = s.amber_s  # the plan's amber


class ConstantSignal(SignalProvider):
    def update(self, frame: np.ndarray | None, t: float) -> None:
        for g in self.groups:
            if g not in self._phase:
                self._phase[g], self._since[g] = self.config.constant, float("-inf")  # type: ignore[assignment]


class MqttSignal(SignalProvider):
    """Phase changes pushed by a controller (``on_phase``), possibly out of order or early.

    Controller time is converted to camera time with ``clock_offset_s`` (controller minus
    camera). The phase at time t is the last change at or before t, so a message that arrives
    late still applies to the frames it covers, and one stamped in the future waits its turn.
    """

    def __init__(self, config: SignalConfig, keep: int = 256):
        super().__init__(config)
        self._lock = threading.Lock()
        self._changes: dict[str, list[tuple[float, str]]] = {}
        self._keep = keep

    def on_phase(self, group: str, phase: str, controller_time: float) -> None:
        t = controller_time - self.config.clock_offset_s
        with self._lock:
            lst = self._changes.setdefault(group, [])
            bisect.insort(lst, (t, phase))
            del lst[: max(0, len(lst) - self._keep)]

    def update(self, frame: np.ndarray | None, t: float) -> None:
        with self._lock:
            for group, lst in self._changes.items():
                i = bisect.bisect_right(lst, (t, "\uffff")) - 1
                if i < 0:
                    self._phase[group] = "unknown"
                    continue
                phase = lst[i][1]
                j = i  # start of this run of the same phase
                while j > 0 and lst[j - 1][1] == phase:
                    j -= 1
                self._phase[group], self._since[group] = phase, lst[j][0]  # type: ignore[assignment]
                # the controller reported when the amber before this red began: its duration
                k = j - 1
                while k > 0 and lst[k - 1][1] == "amber":
                    k -= 1
                amber = phase == "red" and k >= 0 and lst[k][1] == "amber"
                self._amber[group] = lst[j][0] - lst[k][0] if amber else None


def make_signal(config: SignalConfig, frame_size: tuple[int, int] | None = None,
                geometry_size: tuple[int, int] | None = None) -> SignalProvider:
    if config.mode == "roi":
        return RoiSignal(config, frame_size, geometry_size)
    if config.mode == "schedule":
        return ScheduleSignal(config)
    if config.mode == "mqtt":
        return MqttSignal(config)
    return ConstantSignal(config)
