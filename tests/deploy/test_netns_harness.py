"""The namespace harness itself: hosts reach each other only through the switch, a cut really
cuts, and nothing is left behind, not even by a test run that was killed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from slnet import netns

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _need_netns() -> None:
    why = netns.unavailable()
    if why:
        pytest.skip(why)


def listen(net: netns.Hosts, host: str, port: int) -> subprocess.Popen:
    code = ("import socket,time\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(({net.addr[host]!r}, {port})); s.listen(); print('up', flush=True); time.sleep(600)")
    proc = net.popen(host, [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "up"
    return proc


def test_cut_and_restore() -> None:
    with netns.Hosts(["pole", "dc"]) as net:
        listen(net, "dc", 8883)
        assert net.reachable("pole", "dc", 8883)
        net.cut("pole")
        assert not net.reachable("pole", "dc", 8883)
        assert net.run("pole", ["ip", "-o", "link", "show", "eth0"]).stdout.count("LOWER_UP") == 1  # carrier kept
        net.restore("pole")
        assert net.reachable("pole", "dc", 8883)


def test_namespaces_are_isolated_from_the_host() -> None:
    with netns.Hosts(["pole", "dc"]) as net:
        host_links = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        assert net.addr["dc"] not in host_links  # 10.x lives only inside the namespaces
        inside = net.run("pole", ["ip", "-o", "-4", "addr"]).stdout
        assert net.addr["pole"] in inside and "127.0.0.1" in inside


def test_everything_removed_after_a_failure() -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with netns.Hosts(["pole", "dc"]) as net:
            names = [*net.ns.values(), net.switch]
            proc = listen(net, "dc", 1883)
            raise RuntimeError("boom")
    assert proc.poll() is not None
    assert not set(names) & set(netns._namespaces())


def test_namespaces_of_a_killed_run_are_removed_by_the_next(tmp_path: Path) -> None:
    here = Path(__file__).resolve().parent
    code = (f"import sys, time; sys.path.insert(0, {str(here)!r})\n"
            "from slnet import netns\nnet = netns.Hosts(['pole']).up()\n"
            "print(net.switch, *net.ns.values(), flush=True); time.sleep(600)")
    orphan = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    names = orphan.stdout.readline().split()
    orphan.kill()  # no cleanup runs
    orphan.wait()
    assert set(names) <= set(netns._namespaces())
    with netns.Hosts(["pole"]):
        assert not set(names) & set(netns._namespaces())
