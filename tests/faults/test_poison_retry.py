"""The desk service with its PostgreSQL down: a plate result is retried (RetryLater, not
acknowledged), the desk says it is stuck (``stopline health`` exits 1, the retained status reads
``unhealthy: ...``), and after ``mqtt.consumer.max_attempts`` runs the message is dead-lettered as
poison instead of blocking the desk for good; its ``/metrics`` keeps answering and says why.
With the database back, the desk is healthy and queues new results.

That the count survives a consumer restart is tested on the bus itself
(tests/bus/test_poison.py): the desk cannot start while its database is down.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from desk.conftest import _Cluster, PgServer
from support.bus_helpers import Collector
from support.mosquitto import free_port
from support.pipeline import Pipeline, wait_until

from stopline.shared import topics
from stopline.shared.health import ledger_file
from stopline.shared.messages import decode, encode
from stopline.services.violation_desk.samples import make_result

pytestmark = [pytest.mark.timeout(600)]

SITE, CAM, ATTEMPTS = "retry", "cam1", 25  # ~1 s apart: time to look at the stuck desk


def attempts(path) -> int:
    try:
        with sqlite3.connect(path) as db:
            return int(db.execute("SELECT COALESCE(MAX(count), 0) FROM attempts").fetchone()[0])
    except sqlite3.Error:
        return 0


def metrics(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.HTTPError:
        return ""


def test_database_down_means_bounded_retries_then_a_poison_dead_letter(mosquitto, tmp_path):
    cluster = _Cluster()
    try:
        server = PgServer(cluster.url)
        url = server.db_url(server.create())
        site = tmp_path / "site.yaml"
        site.write_text(yaml.safe_dump({
            "site": SITE, "state_dir": str(tmp_path / "state"),
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "reconnect_min_s": 0.5, "reconnect_max_s": 1,
                     "consumer": {"max_attempts": ATTEMPTS, "stall_after_s": 2}},
            "database": {"url": url},
            "services": {"violation_desk": {"host": "127.0.0.1", "port": free_port()}}}))
        subprocess.run([sys.executable, "-m", "stopline", "desk", "migrate", "--config", str(site)], check=True,
                       stdout=subprocess.DEVNULL)
        dead = Collector(mosquitto, topics.deadletter(SITE))
        status = Collector(mosquitto, topics.all_service_status(SITE))
        out = Collector(mosquitto, topics.any_camera(SITE, topics.STATUS))
        pipe = Pipeline(site, tmp_path / "logs")
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect(mosquitto.host, mosquitto.port)
        pub.loop_start()
        ledger = ledger_file(tmp_path / "state", "violation-desk", "t1")

        def health() -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "stopline", "health", "--config", str(site),
                                   "--service", "violation-desk"], capture_output=True, text=True, timeout=60)

        def send(result, blobs) -> None:
            info = pub.publish(topics.camera_topic(SITE, CAM, topics.READ), encode(result, blobs), qos=1)
            info.wait_for_publish(10)

        try:
            pipe.start("violation-desk")
            assert wait_until(lambda: pipe.health("violation-desk").get("connected"), 120), pipe.log_tail()
            cluster._run("pg_ctl", "-D", str(cluster.data), "-m", "fast", "-w", "stop")
            result, blobs = make_result("AB123CD", site=SITE, camera=CAM)
            send(result, blobs)
            assert wait_until(lambda: attempts(ledger) >= 2, 60), pipe.log_tail()
            assert dead.messages == []  # retried, not dropped

            # stuck on the database: unhealthy, and it says why
            assert wait_until(lambda: health().returncode == 1, 30), pipe.log_tail()
            why = health().stdout
            assert "stalled" in why and "database unavailable" in why, why
            assert any(p.startswith(b"unhealthy: stalled") for _, p, _ in status.messages), status.messages
            stalled = 'stopline_bus_unhealthy{instance="t1",reason="no_progress",service="violation-desk"} 1.0'
            prom = tmp_path / "state" / "health" / "violation-desk-t1.prom"
            assert wait_until(lambda: stalled in prom.read_text(), 15)
            port = yaml.safe_load(site.read_text())["services"]["violation_desk"]["port"]
            assert wait_until(lambda: stalled in metrics(port), 30)  # the desk's /metrics, database down

            # bounded: dead-lettered as poison after ATTEMPTS runs
            assert wait_until(lambda: len(dead.messages) == 1, 60), pipe.log_tail()
            letter = decode(dead.messages[0][1]).message
            assert letter.service == "violation-desk"
            assert letter.reason.startswith(f"poison: no outcome after {ATTEMPTS} attempts"), letter.reason
            assert "database unavailable" in letter.reason
            assert attempts(ledger) == 0  # forgotten once it had its outcome

            # the database is back: healthy again, new results are queued, the poison does not return
            cluster._run("pg_ctl", "-D", str(cluster.data), "-l", str(cluster.root / "log"), "-o",
                         f"-p {cluster.port} -k {cluster.root} -c listen_addresses=127.0.0.1", "-w", "start")
            fresh, fresh_blobs = make_result("CD456EF", site=SITE, camera=CAM)
            send(fresh, fresh_blobs)
            assert wait_until(lambda: any(decode(p).message.event_id == fresh.candidate.event_id
                                          for _, p, _ in out.messages), 60), pipe.log_tail()
            assert wait_until(lambda: health().returncode == 0, 30), health().stdout
            assert status.messages[-1][1] == b"online"
            time.sleep(1)
            assert len(dead.messages) == 1
        finally:
            pipe.stop()
            pub.loop_stop()
            for c in (dead, status, out):
                c.close()
    finally:
        try:
            cluster.stop()
        except subprocess.CalledProcessError:  # already stopped (a failure while it was down)
            shutil.rmtree(cluster.root, ignore_errors=True)
