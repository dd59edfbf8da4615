"""Traffic on the approach: arrivals, car following, stopping for the signal, red runners.

Longitudinal motion follows the Intelligent Driver Model (IDM); a driver who must stop sees a
standing obstacle 1.2 m before the stop line. Behaviours:

- ``normal``: at amber, stops if it can do so comfortably, else goes; always stops for red.
- ``late``: ignores amber, stops for red if it still can (crosses late in amber or just into red).
- ``runner``: ignores amber and red (crosses well into red).

A driver becomes ``late`` or ``runner`` when it is the first to face amber or red with nobody
waiting ahead in its lane, with probability ``red_runner_share`` (drawn at arrival); a driver
who has had to stop in a queue always waits for green.
- ``rtor``: turns right; on red it stops at the line, waits, then turns (not a violation
  where the approach allows right turn on red).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry import Layout
from .paths import Path, opposing, right_turn, straight_approach
from .plates import PlateText, random_plate
from .signal import SignalPlan
from .spec import SceneSpec
from .vehicles import CLASS_SHARE, CLASSES, Body, make_body

STOP_GAP = 1.2  # metres before the stop line where a stopping driver's front comes to rest
B_COMF = 3.2
B_MAX = 8.0


@dataclass
class Driver:
    v0: float  # desired speed m/s
    a: float  # max acceleration
    b: float  # comfortable deceleration
    T: float  # time headway
    s0: float  # standstill gap
    behaviour: str  # normal | late | runner | rtor
    reaction_s: float  # delay before starting on green


@dataclass
class Agent:
    vid: int
    vclass: str
    length: float
    path: Path
    lane: str  # "a0".. approach lanes, "o0".. opposing lanes
    driver: Driver
    s: float
    v: float
    turning: bool = False
    body: Body | None = None
    plate: PlateText | None = None
    amber_decision: str | None = None  # "stop" | "go", latched per amber
    stopped_at_line_s: float = 0.0  # time spent standing at the line (rtor)
    released: bool = False  # rtor driver finished its stop
    done: bool = False
    u_run: float = 1.0  # drawn at arrival: runs the light if below red_runner_share
    u_kind: float = 0.0  # late (< 0.5) or full runner
    decided: bool = False  # the run-or-stop choice has been made for this approach
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (frame, s, v)


def _driver(rng: np.random.Generator, vclass: str, behaviour: str) -> Driver:
    heavy = vclass in ("truck", "bus")
    return Driver(
        v0=float(rng.uniform(10.0, 12.5) if heavy else rng.uniform(12.0, 15.5)),
        a=float(rng.uniform(0.9, 1.3) if heavy else rng.uniform(1.5, 2.4)),
        b=float(rng.uniform(2.5, 3.5)),
        T=float(rng.uniform(1.2, 1.8)),
        s0=float(rng.uniform(1.8, 2.8)),
        behaviour=behaviour,
        reaction_s=float(rng.uniform(0.4, 1.4)),
    )


def _idm(v: float, v0: float, gap: float, dv: float, d: Driver) -> float:
    s_star = d.s0 + max(0.0, v * d.T + v * dv / (2.0 * np.sqrt(d.a * d.b)))
    gap = max(gap, 0.05)
    return d.a * (1.0 - (v / v0) ** 4 - (s_star / gap) ** 2)


class TrafficSim:
    """Steps every agent at the video frame rate; frame ``f`` is video time ``f / fps``."""

    def __init__(self, spec: SceneSpec, layout: Layout, plan: SignalPlan, rng: np.random.Generator):
        self.spec, self.layout, self.plan, self.rng = spec, layout, plan, rng
        self.dt = 1.0 / spec.fps
        self.agents: list[Agent] = []
        self.next_id = 1
        self.lanes = {f"a{i}": straight_approach(layout.lane_centre(i)) for i in range(layout.lanes)}
        self.turn_path = right_turn(layout)
        self.opp = {f"o{i}": opposing(layout, i) for i in range(2)} if spec.opposing_traffic else {}
        rate = spec.arrivals_per_lane_h / 3600.0
        self.rate = rate
        t0 = -spec.warmup_s
        self.next_arrival = {k: t0 + float(rng.exponential(1 / rate)) if rate > 0 else np.inf for k in (*self.lanes, *self.opp)}
        self.green_since: float | None = None

    # -------------------------------------------------------------------- arrivals
    def _spawn(self, lane: str, t: float) -> None:
        rng = self.rng
        leader = self._last_in_lane(lane)
        if leader is not None and leader.s - leader.length < 16.0:
            return  # entrance blocked; try again next frame
        vclass = CLASSES[int(rng.choice(len(CLASSES), p=np.array(CLASS_SHARE)))]
        if lane.startswith("o"):
            path, turning, beh = self.opp[lane], False, "normal"
        else:
            turning = lane == "a0" and vclass not in ("bus", "truck") and rng.random() < self.spec.right_turn_share
            path = self.turn_path if turning else self.lanes[lane]
            beh = ("rtor" if self.spec.right_turn_on_red else "normal") if turning else "normal"
        region = self.spec.region if self.spec.region != "mixed" else ("us" if rng.random() < 0.5 else "eu")
        plate = random_plate(rng, region)
        body = make_body(rng, vclass, region)
        d = _driver(rng, vclass, beh)
        v = d.v0 if leader is None else min(d.v0, leader.v + 2.0)
        self.agents.append(Agent(self.next_id, vclass, body.length, path, lane, d, s=0.0, v=v,
                                 turning=turning, body=body, plate=plate,
                                 u_run=float(rng.random()), u_kind=float(rng.random())))
        self.next_id += 1
        self.next_arrival[lane] = t + float(rng.exponential(1 / self.rate))

    def _last_in_lane(self, lane: str) -> Agent | None:
        last = None
        for a in self.agents:
            if a.lane == lane and not a.done and (last is None or a.s < last.s):
                last = a
        return last

    # -------------------------------------------------------------------- signal logic
    def _must_stop(self, a: Agent, t: float, queued: bool) -> bool:
        path = a.path
        if path.stop_s is None or a.s >= path.stop_s:
            return False
        phase = self.plan.phase(t)
        d = a.driver
        dist = path.stop_s - STOP_GAP - a.s
        if phase == "green":
            a.amber_decision = None
            if d.behaviour == "rtor":
                a.released = False
            return False
        if not a.decided and d.behaviour == "normal" and dist < 80.0:
            # the first driver to face amber/red with nobody waiting ahead decides whether to run it
            a.decided = True
            if not queued and a.u_run < self.spec.red_runner_share:
                d.behaviour = "late" if a.u_kind < 0.4 else "runner"
        if d.behaviour in ("runner", "late") and a.v < 0.5:
            d.behaviour = "normal"  # a driver who had to stop in the queue waits for green
        if d.behaviour == "runner":
            return False
        if phase == "amber":
            if d.behaviour == "late":
                return False
            if a.amber_decision is None:
                a.amber_decision = "stop" if dist > a.v**2 / (2 * B_COMF) or a.v < 2 else "go"
            return a.amber_decision == "stop"
        # red
        if a.amber_decision == "go":
            return False
        if d.behaviour == "rtor":
            return not a.released
        if d.behaviour == "late":
            return dist > a.v**2 / (2 * B_COMF) + 15.0  # presses on unless red comes early
        return dist > a.v**2 / (2 * B_MAX) - 0.5

    # -------------------------------------------------------------------- stepping
    def step(self, frame: int) -> None:
        t = frame * self.dt
        phase = self.plan.phase(t)
        for lane in (*self.lanes, *self.opp):
            if t >= self.next_arrival.get(lane, np.inf):
                if lane.startswith("o") and phase != "green":
                    self.next_arrival[lane] = t + float(self.rng.exponential(1 / self.rate))
                    continue
                self._spawn(lane, t)
        if phase == "green" and self.green_since is None:
            self.green_since = t
        elif phase != "green":
            self.green_since = None
        # leaders per lane, nearest first; a vehicle well into its right turn has left the lane
        by_lane: dict[str, list[Agent]] = {}
        for a in self.agents:
            if not a.done:
                turned = a.turning and a.path.turn_s is not None and a.s > a.path.turn_s + 6.0
                by_lane.setdefault(f"turned{a.vid}" if turned else a.lane, []).append(a)
        acc: dict[int, float] = {}
        for lane, agents in by_lane.items():
            agents.sort(key=lambda x: -x.s)
            for i, a in enumerate(agents):
                d = a.driver
                v0 = d.v0
                if a.turning and a.path.turn_s is not None and a.s < a.path.turn_s + 8.0:
                    if a.path.turn_s - a.s < 30.0:
                        v0 = min(v0, 5.5)
                acc_i = _idm(a.v, v0, 1e6, 0.0, d)
                lead = agents[i - 1] if i > 0 else None
                if lead is not None:
                    acc_i = min(acc_i, _idm(a.v, v0, lead.s - lead.length - a.s, a.v - lead.v, d))
                # queued: someone ahead who has not crossed and will not run the light either
                queued = (lead is not None and lead.path.stop_s is not None and lead.s < lead.path.stop_s
                          and lead.driver.behaviour not in ("runner", "late"))
                if self._must_stop(a, t, queued):
                    gap = a.path.stop_s - STOP_GAP - a.s
                    acc_i = min(acc_i, _idm(a.v, v0, gap + d.s0, a.v, d))
                # waiting at the line: reaction time after green / rtor dwell
                if a.v < 0.3 and a.path.stop_s is not None and 0 <= a.path.stop_s - a.s < STOP_GAP + 3.0:
                    if d.behaviour == "rtor" and phase == "red":
                        a.stopped_at_line_s += self.dt
                        if a.stopped_at_line_s > 1.5 + d.reaction_s:
                            a.released = True
                    if phase == "green" and self.green_since is not None and t - self.green_since < d.reaction_s:
                        acc_i = min(acc_i, 0.0)
                acc[a.vid] = max(acc_i, -B_MAX)
        for a in self.agents:
            if a.done:
                continue
            a.v = max(0.0, a.v + acc[a.vid] * self.dt)
            a.s += a.v * self.dt
            if a.s > a.path.length + a.length + 2:
                a.done = True
            if frame >= 0:
                a.history.append((frame, a.s, a.v))

    def run(self, n_frames: int) -> list[Agent]:
        start = -int(round(self.spec.warmup_s * self.spec.fps))
        for f in range(start, n_frames):
            self.step(f)
        return [a for a in self.agents if a.history]
