"""Network namespaces as separate hosts (pole, gateway, data center) on a private switch.

Everything lives inside namespaces created for one run: a "switch" namespace holds a Linux
bridge, each host namespace gets ``eth0`` with a 10.x address, veth-paired to a port on the
switch. Nothing is added to the caller's namespace, and no address outside these namespaces
is ever used. ``cut(host)`` black-holes a host's link at the switch (the host keeps carrier,
its packets vanish, like a failed WAN link); ``restore(host)`` reconnects it.

    with Hosts(["pole", "gw", "dc"]) as net:
        net.popen("dc", ["mosquitto", "-c", conf])
        net.cut("pole"); time.sleep(30); net.restore("pole")

``close()`` (also on exceptions, and at interpreter exit) kills the processes started in the
namespaces and deletes them. Namespaces left by a killed test run (their creator's pid is
gone) are removed by the next ``Hosts``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

PREFIX = "sltest"
_NAME = re.compile(rf"^{PREFIX}-(\d+)-[0-9a-f]+-\w+$")


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "network namespace tests need root"
    if shutil.which("ip") is None:
        return "iproute2 (ip) not installed"
    probe = f"{PREFIX}-{os.getpid()}-0-probe"  # matches _NAME: removed if left behind
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"ip netns unavailable: {r.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def _namespaces() -> list[str]:
    out = _ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_namespace(name: str) -> None:
    pids = _ip("netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "del", name, check=False)


def remove_stale() -> list[str]:
    """Delete namespaces of earlier runs whose creating process no longer exists."""
    removed = []
    for name in _namespaces():
        m = _NAME.match(name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            _kill_namespace(name)
            removed.append(name)
    return removed


class Hosts:
    def __init__(self, hosts: Sequence[str] = ("pole", "gw", "dc"), subnet: str = "10.77.0"):
        if not subnet.startswith("10."):
            raise ValueError("keep the test network in 10.0.0.0/8")
        run = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(3)}"
        self.switch = f"{run}-switch"
        self.ns = {h: f"{run}-{h}" for h in hosts}
        self.addr = {h: f"{subnet}.{i + 1}" for i, h in enumerate(hosts)}
        self.procs: list[subprocess.Popen] = []
        self._cut: set[str] = set()
        self._closed = False

    # ------------------------------------------------------------------ set-up / tear-down

    def up(self) -> "Hosts":
        remove_stale()
        atexit.register(self.close)
        try:
            _ip("netns", "add", self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for host, ns in self.ns.items():
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
                port = self._port(host)
                _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
                _ip("-n", ns, "addr", "add", f"{self.addr[host]}/24", "dev", "eth0")
                _ip("-n", ns, "link", "set", "eth0", "up")
        except Exception:
            self.close()
            raise
        return self

    def _port(self, host: str) -> str:
        return f"p-{host}"[:15]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for ns in [*self.ns.values(), self.switch]:
            _kill_namespace(ns)
        atexit.unregister(self.close)

    def __enter__(self) -> "Hosts":
        return self.up()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ running things

    def argv(self, host: str, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``host`` (``ip netns exec`` execs it: the pid is the program's)."""
        return ["ip", "netns", "exec", self.ns[host], *argv]

    def popen(self, host: str, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        """Start a process in ``host``; it is terminated by ``close()``."""
        proc = subprocess.Popen(self.argv(host, argv), **kwargs)
        self.procs.append(proc)
        return proc

    def run(self, host: str, argv: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.argv(host, argv), **kwargs)

    # ------------------------------------------------------------------ faults

    def cut(self, host: str) -> None:
        """Black-hole ``host``'s link: detach its switch port (its own carrier stays up)."""
        _ip("-n", self.switch, "link", "set", self._port(host), "nomaster")
        self._cut.add(host)

    def restore(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", self._port(host), "master", "br0")
        self._cut.discard(host)

    def reachable(self, src: str, dst: str, port: int, timeout: float = 1.0) -> bool:
        """Whether a TCP connection from ``src`` to ``dst``:``port`` succeeds."""
        code = ("import socket,sys\n"
                f"s=socket.socket(); s.settimeout({timeout})\n"
                f"sys.exit(s.connect_ex(({self.addr[dst]!r}, {port})))")
        return self.run(src, [sys.executable, "-c", code]).returncode == 0
