"""The central broker as deployed (deploy/mosquitto/central.conf + the generated ACL), on a free
loopback port: authentication, per-camera and per-role permissions, queue sizing, TLS."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from slnet import broker, mqtt_tool
from slnet.mqtt_tool import Subscriber, connack, publish_numbered

pytestmark = pytest.mark.usefixtures("need_mosquitto")

USERS = ["plate-finder", "plate-reader", "violation-desk", "monitor", "cam-a", "cam-b", "signal-b"]


@pytest.fixture
def central(two_camera_site: Path):
    passwords = {u: secrets.token_hex(8) for u in USERS}
    with broker.Mosquitto("central", broker.CENTRAL_CONF, users=passwords,
                          acl=broker.make_acl([two_camera_site])) as mq:
        mq.passwords = passwords
        yield mq


def login(mq, user: str) -> dict:
    return dict(host=mq.host, port=mq.port, user=user, password=mq.passwords[user])


def test_make_acl_lists_every_user(two_camera_site: Path) -> None:
    out = subprocess.run([sys.executable, str(broker.MAKE_ACL), "--users", str(two_camera_site)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert sorted(out) == sorted(USERS)


def test_make_acl_refuses_reserved_camera_id(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("site: s\ncameras:\n  - id: status\n    stop_line: [[0, 1], [5, 1]]\n"
                    "    travel_direction: [0, 1]\n    signal: {mode: constant, constant: red}\n")
    r = subprocess.run([sys.executable, str(broker.MAKE_ACL), str(site)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "'status' is reserved" in r.stderr


def test_committed_acl_matches_generator() -> None:
    """deploy/mosquitto/acl is what make_acl.py writes for the example data-center site."""
    committed = (broker.DEPLOY / "mosquitto" / "acl").read_text()
    assert committed == broker.make_acl([broker.DEPLOY / "sites" / "datacenter.yaml"])


def test_clients_without_or_with_wrong_credentials_are_refused(central) -> None:
    assert connack(central.host, central.port, None, None) == "Not authorized"
    assert connack(central.host, central.port, "cam-a", "wrong-password") == "Not authorized"
    assert connack(central.host, central.port, "nobody", "x") == "Not authorized"
    assert connack(**login(central, "cam-a")) == "Success"


def test_camera_cannot_publish_as_another_camera(central) -> None:
    watch = Subscriber(**login(central, "monitor"), topic="stopline/t1/#", clean=True).start()
    try:
        # cam-a forging camera b's plates and candidates: acknowledged by the broker, delivered to nobody
        for topic in ("stopline/t1/b/violation/plates", "stopline/t1/b/violation/candidate",
                      "stopline/t1/a/violation/read", "stopline/t2/a/violation/plates"):
            r = publish_numbered(**login(central, "cam-a"), topic=topic, count=3, start=100)
            assert r["acked"] == 3
        # control: its own camera's topic goes through, so the silence above is the ACL
        publish_numbered(**login(central, "cam-a"), topic="stopline/t1/a/violation/plates", count=3)
        assert watch.wait_for(3, timeout=5)
        time.sleep(0.5)
        got = watch.got.summary()
        assert got["topics"] == ["stopline/t1/a/violation/plates"]
        assert got["distinct"] == 3
    finally:
        watch.stop()


def test_camera_cannot_read_another_cameras_topics(central) -> None:
    spy = Subscriber(**login(central, "cam-a"), topic="stopline/t1/+/violation/status", clean=True).start()
    try:
        for cam in ("b", "a"):
            publish_numbered(**login(central, "violation-desk"), topic=f"stopline/t1/{cam}/violation/status",
                             count=2, start=0 if cam == "a" else 10)
        assert spy.wait_for(2, timeout=5)
        time.sleep(0.5)
        assert spy.got.summary()["topics"] == ["stopline/t1/a/violation/status"]
    finally:
        spy.stop()


def test_each_role_can_do_its_stage(central) -> None:
    """plates (camera) -> shared-subscribed reader -> read -> desk; signal controller -> camera."""
    reader = Subscriber(**login(central, "plate-reader"), client_id="reader-1",
                        topic="$share/plate-reader/stopline/t1/+/violation/plates").start()
    desk = Subscriber(**login(central, "violation-desk"), client_id="desk-1",
                      topic="$share/violation-desk/stopline/t1/+/violation/read").start()
    cam_b = Subscriber(**login(central, "cam-b"), topic="stopline/t1/b/signal", clean=True).start()
    try:
        assert reader.got.granted == [1] and desk.got.granted == [1]
        publish_numbered(**login(central, "cam-a"), topic="stopline/t1/a/violation/plates", count=5)
        publish_numbered(**login(central, "cam-b"), topic="stopline/t1/b/violation/plates", count=5, start=5)
        assert reader.wait_for(10, timeout=5)
        publish_numbered(**login(central, "plate-reader"), topic="stopline/t1/b/violation/read", count=4)
        assert desk.wait_for(4, timeout=5)
        publish_numbered(**login(central, "signal-b"), topic="stopline/t1/b/signal", count=2)
        assert cam_b.wait_for(2, timeout=5)
        # a reader may not announce review decisions or forge candidates
        publish_numbered(**login(central, "plate-reader"), topic="stopline/t1/b/violation/plates", count=2,
                         start=50)
        time.sleep(0.5)
        assert reader.got.summary(10)["unexpected"] == []
    finally:
        for s in (reader, desk, cam_b):
            s.stop()


def test_offline_persistent_subscriber_loses_nothing_beyond_default_queue(central) -> None:
    """mosquitto's default max_queued_messages (1000) would drop most of these 3000."""
    reader = Subscriber(**login(central, "plate-reader"), client_id="reader-slow",
                        topic="$share/plate-reader/stopline/t1/+/violation/plates").start()
    reader.stop()  # away, its session (and shared subscription) kept by the broker
    r = publish_numbered(**login(central, "cam-a"), topic="stopline/t1/a/violation/plates",
                         count=3000, size=256)
    assert r["acked"] == 3000
    reader = Subscriber(**login(central, "plate-reader"), client_id="reader-slow",
                        topic="$share/plate-reader/stopline/t1/+/violation/plates").start()
    try:
        assert reader.wait_for(3000, timeout=30), reader.got.summary(3000)["missing"][:20]
    finally:
        reader.stop()


def test_default_queue_limit_would_drop(two_camera_site: Path) -> None:
    """Shows the test above can fail: the same broker with mosquitto's default queue limit."""
    pw = {u: "pw" for u in USERS}
    with broker.Mosquitto("central-default", broker.CENTRAL_CONF, users=pw,
                          acl=broker.make_acl([two_camera_site]),
                          replace={"max_queued_messages": None}) as mq:
        topic = "stopline/t1/a/violation/plates"
        Subscriber(mq.host, mq.port, "plate-reader", "pw", topic, client_id="r").start().stop()
        publish_numbered(mq.host, mq.port, "cam-a", "pw", topic, count=3000, size=256)
        again = Subscriber(mq.host, mq.port, "plate-reader", "pw", topic, client_id="r").start()
        again.wait_for(3000, timeout=3)
        again.stop()
        assert again.got.summary()["distinct"] < 3000


def test_tls_listener(central_tls) -> None:
    mq, ca = central_tls
    assert connack(mq.host, mq.tls_port, "cam-a", "pw", ca_file=str(ca)) == "Success"
    assert connack(mq.host, mq.tls_port, "cam-a", "bad", ca_file=str(ca)) == "Not authorized"
    sub = Subscriber(mq.host, mq.tls_port, "monitor", "pw", "stopline/t1/a/#", clean=True, ca_file=str(ca)).start()
    try:
        publish_numbered(mq.host, mq.tls_port, "cam-a", "pw", "stopline/t1/a/violation/plates", 3,
                         ca_file=str(ca))
        assert sub.wait_for(3, timeout=5)
    finally:
        sub.stop()


@pytest.fixture
def central_tls(two_camera_site: Path, tmp_path: Path):
    from slnet.certs import write_ca_and_server

    pw = {u: "pw" for u in USERS}
    mq = broker.Mosquitto("central-tls", broker.CENTRAL_CONF, users=pw, acl=broker.make_acl([two_camera_site]))
    certs = mq.dir / "certs"
    ca = write_ca_and_server(certs, hosts=["localhost", "127.0.0.1"])
    mq.tls_port = broker.free_port()
    tls = broker.render(broker.TLS_CONF.read_text(), {
        "listener": f"{mq.tls_port} 127.0.0.1",
        "cafile": str(certs / "ca.crt"), "certfile": str(certs / "server.crt"), "keyfile": str(certs / "server.key"),
    })
    (mq.dir / "conf.d" / "tls.conf").write_text(tls)
    broker.chown_for_broker(mq.dir)
    try:
        mq.start()
        yield mq, certs / "ca.crt"
    finally:
        mq.close()


def test_mqtt_tool_cli_counts(central) -> None:
    """The CLI the namespace tests run: a subscriber reports missing numbers when short."""
    sub = subprocess.Popen([sys.executable, mqtt_tool.__file__, "sub", "--port", str(central.port),
                            "--user", "monitor", "--password", central.passwords["monitor"],
                            "--client-id", "cli-sub", "--topic", "stopline/t1/#", "--expect", "5",
                            "--timeout", "4", "--settle", "0.2"], stdout=subprocess.PIPE, text=True)
    assert sub.stdout.readline().strip() == "READY"
    publish_numbered(**login(central, "cam-a"), topic="stopline/t1/a/violation/plates", count=3)
    out, _ = sub.communicate(timeout=20)
    result = json.loads(out)
    assert sub.returncode == 1 and result["missing"] == [3, 4] and result["duplicates"] == 0


def test_oversized_message_is_refused_and_broker_keeps_running(central) -> None:
    """Above max_packet_size (16 MiB) the broker drops the sender, delivers nothing, carries on."""
    watch = Subscriber(**login(central, "monitor"), topic="stopline/t1/#", clean=True).start()
    try:
        client = mqtt_tool.make_client("cam-a", central.passwords["cam-a"])
        client.connect(central.host, central.port)
        client.loop_start()
        info = client.publish("stopline/t1/a/violation/plates", mqtt_tool.payload(0, 17 * 1024 * 1024), qos=1)
        central.wait_log("disconnected due to oversize packet", timeout=10)
        client.loop_stop()
        assert not info.is_published()
        # a normal-sized message right after goes through
        publish_numbered(**login(central, "cam-a"), topic="stopline/t1/a/violation/plates", count=1, start=1)
        assert watch.wait_for(1, timeout=5, start=1)
        assert 0 not in watch.got.seqs()
    finally:
        watch.stop()


def test_shared_readers_one_killed_mid_stream_and_restarted(central, tmp_path: Path) -> None:
    """Two plate readers share the plates; one is SIGKILLed mid-stream. mosquitto keeps routing
    its share to its (persistent) session, so the survivor alone does not get everything; the
    killed reader returning under the same client id gets the rest. Nothing lost."""
    count = 400
    procs: list[subprocess.Popen] = []

    def reader(client_id: str) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, mqtt_tool.__file__, "sub", "--port", str(central.port),
                              "--user", "plate-reader", "--password", central.passwords["plate-reader"],
                              "--client-id", client_id, "--topic", "$share/plate-reader/stopline/t1/+/violation/plates",
                              "--expect", "1000000", "--timeout", "300", "--log", str(tmp_path / f"{client_id}.log")],
                             stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "READY"
        return p

    def seen(*names: str) -> list[int]:
        out = []
        for n in names:
            path = tmp_path / f"{n}.log"
            out += [int(x) for x in path.read_text().split()] if path.exists() else []
        return out

    try:
        reader("reader-0")
        victim = reader("reader-1")
        pub = threading.Thread(target=publish_numbered, kwargs=dict(
            **login(central, "cam-a"), topic="stopline/t1/a/violation/plates", count=count, rate=40))
        pub.start()
        time.sleep(3)
        victim.kill()  # mid-stream, mid-message: no DISCONNECT, no goodbye
        victim.wait()
        pub.join()
        time.sleep(1)
        assert len(set(seen("reader-0"))) < count  # the dead reader's share waits for it ...
        reader("reader-1")  # ... and comes back with it
        deadline = time.monotonic() + 30
        while set(range(count)) - set(seen("reader-0", "reader-1")) and time.monotonic() < deadline:
            time.sleep(0.2)
        got = seen("reader-0", "reader-1")
        print(f"\nreader killed mid-stream: {len(set(got))}/{count} handled, {len(got) - len(set(got))} duplicates")
        assert set(range(count)) <= set(got)
        assert len(got) - len(set(got)) <= 20
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)
