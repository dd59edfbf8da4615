"""``stopline demo`` as a user runs it: the whole scene through, and stopped by each signal a
user, a service manager or a closing terminal sends. However it ends, no service may be left
running and the review and broker ports are free for the next run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support.cache import shared_dir
from support.mosquitto import free_port
from support.pipeline import wait_until

from stopline.demo import SERVICES, progress_line, render_scene

pytestmark = [pytest.mark.timeout(400)]

SCENE_SECONDS = 20.0  # seed 7 at the demo's defaults: 2 red-light runners in the first 20 s


@pytest.fixture(scope="module")
def demo_scene(tmp_path_factory) -> Path:
    """The scene ``stopline demo --duration 20`` renders (same parameters, so the demo reuses it)."""
    return shared_dir(tmp_path_factory, "demo-scene",  # once per run, whichever worker asks first
                      lambda d: render_scene(d, 7, SCENE_SECONDS, False, 0.8, "eu"))


def start_demo(work: Path, scene: Path, *args: str) -> tuple[subprocess.Popen, int, Path]:
    """The demo in its own session (the test's safety net can then reach everything it started)."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copytree(scene, work / "scene")
    port = free_port()
    out = work / "demo.out"
    with open(out, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "stopline", "demo", "--duration", str(SCENE_SECONDS),
                                 "--no-browser", "--workdir", str(work), "--port", str(port), *args],
                                stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, port, out


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc/PID/task/TID/children)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for children in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                for child in map(int, children.read_text().split()):
                    if child not in found:
                        found.add(child)
                        todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def port_free(port: int) -> bool:
    """Whether a server can listen on 127.0.0.1:port again (as uvicorn and the broker do)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def services_online(work: Path, pids: set[int]) -> bool:
    """All four services say they are connected, each a process the demo started."""
    for service in SERVICES:
        try:
            h = json.loads((work / "state" / "health" / f"{service}-demo.json").read_text())
        except (OSError, ValueError):
            return False
        if not h.get("connected") or h.get("pid") not in pids:
            return False
    return True


def broker_port(work: Path) -> int:
    return int(yaml.safe_load((work / "site.yaml").read_text())["mqtt"]["port"])


@contextlib.contextmanager
def demo_running(work: Path, scene: Path, *args: str):
    proc, port, out = start_demo(work, scene, *args)
    try:
        yield proc, port, out
    finally:  # safety net: whatever a failing test left behind
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stop_signal_stops_the_demo_and_all_its_services(demo_scene, tmp_path, sig):
    work = tmp_path / "demo"
    with demo_running(work, demo_scene) as (proc, port, out):
        assert wait_until(lambda: services_online(work, descendants(proc.pid)), 180, step=0.2), \
            out.read_text()[-3000:]
        children = descendants(proc.pid)
        assert len(children) >= len(SERVICES)
        mqtt_port = broker_port(work)
        proc.send_signal(sig)
        code = proc.wait(120)
        assert code == 0, out.read_text()[-3000:]
        left = sorted(p for p in children if alive(p))
        assert not left, f"still running after {sig.name}: {left}\n" + out.read_text()[-3000:]
        assert port_free(port), f"review port {port} still taken"
        assert port_free(mqtt_port), f"broker port {mqtt_port} still taken"
        assert "stopping the services" in out.read_text()


def test_killing_the_demo_takes_its_services_with_it(demo_scene, tmp_path):
    """SIGKILL: the demo runs no clean-up; the kernel tells each service its parent went."""
    work = tmp_path / "demo"
    with demo_running(work, demo_scene) as (proc, port, out):
        assert wait_until(lambda: services_online(work, descendants(proc.pid)), 180, step=0.2), \
            out.read_text()[-3000:]
        children = descendants(proc.pid)
        mqtt_port = broker_port(work)
        proc.kill()
        proc.wait(10)
        # each service stops as on SIGTERM: finishes what it holds, then leaves
        assert wait_until(lambda: not any(alive(p) for p in children), 60, step=0.2), \
            f"services outlived the killed demo: {sorted(p for p in children if alive(p))}"
        assert port_free(port) and port_free(mqtt_port)


def test_demo_runs_the_scene_through_and_progress_never_shows_more_queued_than_sent(demo_scene, tmp_path):
    work = tmp_path / "demo"
    report = tmp_path / "report.json"
    with demo_running(work, demo_scene, "--exit-when-done", "--report", str(report), "--settle", "60") as \
            (proc, port, out):
        children: set[int] = set()
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            children |= descendants(proc.pid)
            time.sleep(0.2)
        text = out.read_text()
        assert proc.poll() == 0, text[-3000:]
        counts = [(int(s), int(q)) for s, q in re.findall(r"candidates sent +(\d+) \| queued for review +(\d+)", text)]
        assert counts, text[-3000:]
        assert all(q <= s for s, q in counts), counts
        found = json.loads(report.read_text())["found_violations"]
        assert counts[-1] == (found, found) and found >= 1, (counts[-1], found)
        assert len(children) >= len(SERVICES) and not [p for p in children if alive(p)]
        assert port_free(port)


def test_progress_line_counts_what_was_queued_as_sent():
    """The detector's health file (sent) is rewritten every 5 s; the desk's count (queued) is
    live. Between two rewrites a candidate can already be queued: it was sent all the same."""
    line = progress_line({"candidates": 2, "video_time_s": 25.0, "dropped_frames": 0}, 3, 120)
    assert "candidates sent   3 | queued for review   3" in line, line
    line = progress_line({"candidates": 5, "video_time_s": 30.0}, 3, 120)
    assert "candidates sent   5 | queued for review   3" in line, line
