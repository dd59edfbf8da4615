"""The bus against a real mosquitto: ack after handling, dead letters, retries, persistence."""

import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from support.samples import candidate

from stopline.shared import topics
from stopline.shared.bus import Bus, RetryLater
from stopline.shared.config import SiteConfig
from stopline.shared.messages import decode, encode

from support.bus_helpers import FILTER, TOPIC, Collector, site_for, wait_until  # noqa: E402


@pytest.fixture()
def bus_pair(mosquitto):
    made = []

    def make(service, instance="a", **kw):
        bus = Bus(site_for(mosquitto, **kw), service, instance)
        made.append(bus)
        return bus

    yield make
    for b in made:
        b.stop(drain_s=1)


def test_handler_output_published_and_input_acknowledged(mosquitto, bus_pair):
    got = []
    consumer = bus_pair("consumer")
    consumer.subscribe(FILTER, lambda env, topic: got.append(env.message.event_id), group="c")
    consumer.start(wait_s=5)
    producer = bus_pair("producer")
    producer.start(wait_s=5)
    msg, blobs = candidate()
    producer.publish(TOPIC, msg, blobs, timeout=10)
    assert wait_until(lambda: got == [msg.event_id])
    assert wait_until(lambda: consumer.stats.handled == 1)


def test_bad_payloads_go_to_dead_letter_and_service_keeps_running(mosquitto, bus_pair):
    dead = Collector(mosquitto, topics.deadletter("test"))
    got = []
    consumer = bus_pair("consumer", max_message_bytes=1_000_000)
    consumer.subscribe(FILTER, lambda env, topic: got.append(env.message.event_id))
    consumer.start(wait_s=5)
    producer = bus_pair("producer")
    producer.start(wait_s=5)
    producer.publish_raw(TOPIC, b"not a message at all", timeout=10)
    big, big_blobs = candidate(frames=3)
    big_blobs = {k: v * 40 for k, v in big_blobs.items()}  # several MB, over the limit
    for ev in big.candidate.evidence:
        from stopline.shared.messages import sha256_hex
        ev.sha256 = sha256_hex(big_blobs[ev.name])
    producer.publish(TOPIC, big, big_blobs, timeout=10)
    good, blobs = candidate()
    producer.publish(TOPIC, good, blobs, timeout=10)
    assert wait_until(lambda: got == [good.event_id])
    assert wait_until(lambda: len(dead.messages) == 2)
    reasons = [decode(p).message.reason for _, p, _ in dead.messages]
    assert "bad magic" in reasons[0]
    assert "exceeds the limit" in reasons[1]
    assert consumer.stats.dead_letters == 2
    dead.close()


def test_retry_later_is_retried_not_lost(mosquitto, bus_pair):
    calls = []

    def flaky(env, topic):
        calls.append(env.message.event_id)
        if len(calls) < 3:
            raise RetryLater("database down")

    consumer = bus_pair("consumer", reconnect_min_s=0.1)
    consumer.subscribe(FILTER, flaky)
    consumer.start(wait_s=5)
    producer = bus_pair("producer")
    producer.start(wait_s=5)
    msg, blobs = candidate()
    producer.publish(TOPIC, msg, blobs, timeout=10)
    assert wait_until(lambda: consumer.stats.handled == 1)
    assert calls == [msg.event_id] * 3 and consumer.stats.retries == 2


def test_persistent_session_keeps_messages_while_consumer_is_away(mosquitto, bus_pair):
    got = []
    first = bus_pair("consumer", instance="x")
    first.subscribe(FILTER, lambda env, topic: got.append(env.message.event_id))
    first.start(wait_s=5)
    first.stop()
    producer = bus_pair("producer")
    producer.start(wait_s=5)
    sent = []
    for _ in range(5):
        msg, blobs = candidate()
        producer.publish(TOPIC, msg, blobs, timeout=10)
        sent.append(msg.event_id)
    again = bus_pair("consumer", instance="x")
    again.subscribe(FILTER, lambda env, topic: got.append(env.message.event_id))
    again.start(wait_s=5)
    assert wait_until(lambda: len(got) == 5)
    assert got == sent


def test_publish_waits_through_a_broker_restart(mosquitto, bus_pair):
    producer = bus_pair("producer", reconnect_min_s=0.2, reconnect_max_s=1)
    producer.start(wait_s=5)
    got = []
    consumer = bus_pair("consumer", reconnect_min_s=0.2, reconnect_max_s=1)
    consumer.subscribe(FILTER, lambda env, topic: got.append(env.message.event_id))
    consumer.start(wait_s=5)
    mosquitto.stop()
    msg, blobs = candidate()
    t = threading.Thread(target=producer.publish, args=(TOPIC, msg, blobs))
    t.start()
    time.sleep(1.5)
    assert t.is_alive()  # still waiting for the broker's acknowledgement
    mosquitto.start()
    t.join(20)
    assert not t.is_alive()
    assert wait_until(lambda: got == [msg.event_id], 20)


def test_killed_mid_message_is_redelivered_and_status_goes_offline(mosquitto, tmp_path, bus_pair):
    status = Collector(mosquitto, topics.all_service_status("test"))
    out = tmp_path / "handled.txt"
    script = Path(__file__).parents[1] / "support" / "bus_consumer.py"
    proc = subprocess.Popen([sys.executable, str(script), mosquitto.host, str(mosquitto.port), str(out), "1"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    producer = bus_pair("producer")
    producer.start(wait_s=5)
    msg, blobs = candidate()
    producer.publish(TOPIC, msg, blobs, timeout=10)
    assert wait_until(lambda: out.exists() and "start" in out.read_text())
    proc.kill()  # SIGKILL inside the handler: never acknowledged
    proc.wait()
    assert wait_until(lambda: any(p == b"offline" for _, p, _ in status.messages), 60)
    proc = subprocess.Popen([sys.executable, str(script), mosquitto.host, str(mosquitto.port), str(out), "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert wait_until(lambda: f"done {msg.event_id}" in out.read_text())
        assert out.read_text().count(f"done {msg.event_id}") == 1
    finally:
        proc.kill()
        status.close()
