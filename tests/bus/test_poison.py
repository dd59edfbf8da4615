"""Poison messages against a real mosquitto: every message ends acknowledged (handled or
dead-lettered with its reason), RetryLater is bounded by a count kept on disk, and a stalled
consumer is reported unhealthy (health file, ``stopline health``, status topic, metrics)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import yaml
from support.poison import poison_stream
from support.samples import candidate
from support.bus_helpers import FILTER, TOPIC, Collector, site_for, wait_until

from stopline.shared import topics
from stopline.shared.bus import Bus, RetryLater
from stopline.shared.config import ConsumerConfig
from stopline.shared.health import HealthWriter, check, ledger_file
from stopline.shared.messages import decode, encode


@pytest.fixture()
def buses(mosquitto, tmp_path):
    made = []

    def make(service, instance="a", ledger=True, **kw):
        bus = Bus(site_for(mosquitto, **kw), service, instance,
                  ledger=ledger_file(tmp_path, service, instance) if ledger else None)
        made.append(bus)
        return bus

    yield make
    for b in made:
        b.stop(drain_s=1)


def letters(dead: Collector) -> list:
    return [decode(p).message for _, p, _ in dead.messages]


def test_poison_then_valid_is_handled_and_nothing_comes_back_after_a_restart(mosquitto, buses):
    dead = Collector(mosquitto, topics.deadletter("test"))
    got = []
    consumer = buses("consumer", instance="p")
    consumer.subscribe(FILTER, lambda env, topic: got.append(env.message.event_id), group="c")
    consumer.start(wait_s=5)
    producer = buses("producer", ledger=False)
    producer.start(wait_s=5)
    msg, blobs = candidate()
    stream = poison_stream(*candidate(), 25)
    for _, payload in stream:
        producer.publish_raw(TOPIC, payload, timeout=10)
    producer.publish(TOPIC, msg, blobs, timeout=10)
    assert wait_until(lambda: got == [msg.event_id], 30), (got, consumer.stats)
    assert wait_until(lambda: len(dead.messages) == 25), (len(dead.messages), consumer.stats)
    for (kind, payload), letter in zip(stream, letters(dead)):
        assert letter.payload_bytes == len(payload) and letter.reason, kind
    assert consumer.backlog()[0] == 0  # everything acknowledged
    assert consumer.health() == (True, "ok")

    # a restart on the same persistent session: nothing was left unacknowledged, so nothing returns;
    # the same again with the consumer away while the poison arrives
    consumer.stop()
    more, more_blobs = candidate()
    for _, payload in poison_stream(*candidate(), 25):
        producer.publish_raw(TOPIC, payload, timeout=10)
    producer.publish(TOPIC, more, more_blobs, timeout=10)
    again = buses("consumer", instance="p")
    again.subscribe(FILTER, lambda env, topic: got.append(env.message.event_id), group="c")
    again.start(wait_s=5)
    assert wait_until(lambda: got == [msg.event_id, more.event_id], 30), got
    assert wait_until(lambda: len(dead.messages) == 50)
    time.sleep(1)
    assert len(dead.messages) == 50 and again.stats.received == 26
    dead.close()


def test_mixed_stream_loses_and_doubles_nothing(mosquitto, buses):
    dead = Collector(mosquitto, topics.deadletter("test"))
    got = []
    consumer = buses("consumer", instance="m")
    consumer.subscribe_batch(FILTER, lambda items: got.extend(env.message.event_id for env, _ in items),
                             max_batch=10)
    consumer.start(wait_s=5)
    producer = buses("producer", ledger=False)
    producer.start(wait_s=5)
    sent = []
    poison = poison_stream(*candidate(), 12)
    for i in range(60):
        msg, blobs = candidate()
        producer.publish(TOPIC, msg, blobs, timeout=10)
        sent.append(msg.event_id)
        if i % 5 == 0:
            producer.publish_raw(TOPIC, poison[i // 5][1], timeout=10)
    assert wait_until(lambda: len(got) >= 60 and len(dead.messages) == 12, 30), (len(got), len(dead.messages))
    assert sorted(got) == sorted(sent)
    dead.close()


def test_handler_raising_anything_is_dead_lettered(mosquitto, buses):
    """RecursionError, ValueError, KeyError: each message still gets its outcome."""
    dead = Collector(mosquitto, topics.deadletter("test"))
    errors = [RecursionError("deep"), ValueError("Exceeds the limit (4300 digits)"), KeyError("x"), None]
    got = []

    def handle(env, topic):
        err = errors[len(got)]
        got.append(env.message.event_id)
        if err is not None:
            raise err

    consumer = buses("consumer", instance="h")
    consumer.subscribe(FILTER, handle)
    consumer.start(wait_s=5)
    producer = buses("producer", ledger=False)
    producer.start(wait_s=5)
    for _ in errors:
        producer.publish(TOPIC, *candidate(), timeout=10)
    assert wait_until(lambda: consumer.stats.handled == 1 and len(dead.messages) == 3)
    reasons = [m.reason for m in letters(dead)]
    assert ["RecursionError" in reasons[0], "ValueError" in reasons[1], "KeyError" in reasons[2]] == [True] * 3
    assert consumer.backlog()[0] == 0
    dead.close()


def test_retry_later_is_bounded_and_counted_across_restarts(mosquitto, buses, tmp_path):
    dead = Collector(mosquitto, topics.deadletter("test"))
    calls = []
    first_stop = threading.Event()

    def down(env, topic):
        calls.append(env.message.event_id)
        if len(calls) == 2:
            first_stop.set()
        raise RetryLater("database unavailable")

    opts = dict(reconnect_min_s=0.1, reconnect_max_s=0.2, consumer={"max_attempts": 5})
    consumer = buses("consumer", instance="r", **opts)
    consumer.subscribe(FILTER, down)
    consumer.start(wait_s=5)
    producer = buses("producer", ledger=False)
    producer.start(wait_s=5)
    msg, blobs = candidate()
    producer.publish(TOPIC, msg, blobs, timeout=10)
    assert first_stop.wait(15)
    consumer.stop()  # mid-retry: left unacknowledged, 2 (or 3) runs counted on disk
    assert dead.messages == []
    counted = len(calls)
    again = buses("consumer", instance="r", **opts)
    again.subscribe(FILTER, down)
    again.start(wait_s=5)
    assert wait_until(lambda: len(dead.messages) == 1, 20)
    letter = letters(dead)[0]
    assert letter.reason.startswith("poison: no outcome after 5 attempts") and "database unavailable" in letter.reason
    assert len(calls) == 5 and counted in (2, 3)
    assert again.stats.poison == 1 and again.backlog()[0] == 0
    # acknowledged: a third consumer on the session gets nothing
    again.stop()
    third = buses("consumer", instance="r", **opts)
    third.subscribe(FILTER, down)
    third.start(wait_s=5)
    time.sleep(1.5)
    assert len(calls) == 5 and third.stats.received == 0
    dead.close()


def test_one_message_that_keeps_asking_to_retry_does_not_take_its_batch_with_it(mosquitto, buses):
    dead = Collector(mosquitto, topics.deadletter("test"))
    got = []
    producer = buses("producer", ledger=False)
    producer.start(wait_s=5)
    bad, bad_blobs = candidate()

    def handle(items):
        if any(env.message.event_id == bad.event_id for env, _ in items):
            raise RetryLater("statement timeout")
        got.extend(env.message.event_id for env, _ in items)

    consumer = buses("consumer", instance="b", reconnect_min_s=0.1, reconnect_max_s=0.1,
                     consumer={"max_attempts": 3})
    consumer.subscribe_batch(FILTER, handle, max_batch=50)
    consumer.start(wait_s=5)
    consumer.stop()  # let a backlog build up on the session, so it arrives as one batch
    sent = []
    for i in range(10):
        msg, blobs = (bad, bad_blobs) if i == 4 else candidate()
        producer.publish(TOPIC, msg, blobs, timeout=10)
        sent.append(msg.event_id)
    again = buses("consumer", instance="b", reconnect_min_s=0.1, reconnect_max_s=0.1, consumer={"max_attempts": 3})
    again.subscribe_batch(FILTER, handle, max_batch=50)
    again.start(wait_s=5)
    assert wait_until(lambda: len(dead.messages) == 1 and len(got) == 9, 20), (got, dead.messages)
    assert sorted(got) == sorted(e for e in sent if e != bad.event_id)
    assert "poison" in letters(dead)[0].reason
    dead.close()


def test_a_stalled_consumer_is_unhealthy_everywhere(mosquitto, buses, tmp_path):
    status = Collector(mosquitto, topics.all_service_status("test"))
    release = threading.Event()
    consumer = buses("plate-finder", instance="s", consumer={"stall_after_s": 1.0})
    consumer.subscribe(FILTER, lambda env, topic: release.wait(60))
    consumer.start(wait_s=5)
    health = HealthWriter(tmp_path, consumer, every_s=0.5).start()
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump({"site": "test", "state_dir": str(tmp_path)}))

    def cli() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "stopline", "health", "--config", str(site_file),
                               "--service", "plate-finder"], capture_output=True, text=True, timeout=60)

    try:
        assert wait_until(lambda: check(tmp_path, "plate-finder")[0])
        producer = buses("producer", ledger=False)
        producer.start(wait_s=5)
        producer.publish(TOPIC, *candidate(), timeout=10)
        producer.publish(TOPIC, *candidate(), timeout=10)
        assert wait_until(lambda: not check(tmp_path, "plate-finder")[0], 10)
        ok, why = check(tmp_path, "plate-finder")
        assert "stalled: 2 message(s) waiting and none finished" in why
        run = cli()
        assert run.returncode == 1 and "stalled" in run.stdout
        assert wait_until(lambda: any(p.startswith(b"unhealthy: stalled") for _, p, _ in status.messages))
        prom = health.metrics_path.read_text()
        assert 'stopline_bus_unhealthy{instance="s",reason="no_progress",service="plate-finder"} 1.0' in prom
        assert 'stopline_bus_unacked_messages{instance="s",service="plate-finder"} 2.0' in prom
        release.set()  # it moves again: healthy, and the status says online
        assert wait_until(lambda: check(tmp_path, "plate-finder")[0], 10)
        assert wait_until(lambda: status.messages[-1][1] == b"online")
        assert cli().returncode == 0
    finally:
        release.set()
        health.stop()
        status.close()


def test_default_stall_is_reported_within_30_s():
    c = ConsumerConfig()
    assert c.stall_after_s + 5.0 < 30  # the health writer's period is 5 s


def test_unacknowledged_message_counts_as_stall(mosquitto, buses):
    """A message that is never acknowledged (whatever the cause) makes the consumer unhealthy
    even while later messages go through."""
    consumer = buses("consumer", instance="u", consumer={"max_unacked_age_s": 1.0, "stall_after_s": 60})
    consumer.subscribe(FILTER, lambda env, topic: None)
    consumer.start(wait_s=5)
    producer = buses("producer", ledger=False)
    producer.start(wait_s=5)
    consumer._ack = lambda msg, real=consumer._ack: None if consumer.stats.handled == 1 else real(msg)  # lose one ack
    for _ in range(3):
        producer.publish(TOPIC, *candidate(), timeout=10)
    assert wait_until(lambda: consumer.stats.handled == 3)
    assert wait_until(lambda: not consumer.health()[0], 5)
    assert "unacknowledged for" in consumer.health()[1]


def test_payload_hash_keys_messages_without_event_id(mosquitto, buses):
    """A status message has no candidate: it is counted by its SHA-256."""
    from stopline.shared.messages import ViolationStatus

    dead = Collector(mosquitto, topics.deadletter("test"))
    calls = []
    consumer = buses("consumer", instance="k", reconnect_min_s=0.1, reconnect_max_s=0.1, consumer={"max_attempts": 2})
    consumer.subscribe(topics.any_camera("test", topics.STATUS),
                       lambda env, topic: calls.append(1) or (_ for _ in ()).throw(RetryLater("down")))
    consumer.start(wait_s=5)
    producer = buses("producer", ledger=False)
    producer.start(wait_s=5)
    producer.publish_raw(topics.camera_topic("test", "cam1", topics.STATUS),
                         encode(ViolationStatus(event_id="", camera="cam1", status="queued")), timeout=10)
    assert wait_until(lambda: len(dead.messages) == 1)
    assert len(calls) == 2
    dead.close()


def test_limits_and_consumer_settings_are_validated_by_name(tmp_path):
    from stopline.shared.config import ConfigError, load_site

    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"site": "x", "mqtt": {
        "consumer": {"max_attempts": 0, "surprise": 1}, "header_limits": {"max_number_digits": 5000}}}))
    with pytest.raises(ConfigError) as err:
        load_site(path)
    text = str(err.value)
    for field in ("mqtt.consumer.max_attempts", "mqtt.consumer.surprise", "mqtt.header_limits.max_number_digits"):
        assert field in text, text
    path.write_text(yaml.safe_dump({"site": "x", "mqtt": {"consumer": {"max_attempts": 3},
                                                          "header_limits": {"max_depth": 8}}}))
    site = load_site(path)
    assert (site.mqtt.consumer.max_attempts, site.mqtt.header_limits.max_depth) == (3, 8)


def test_the_consumer_applies_its_configured_header_limits(mosquitto, buses):
    dead = Collector(mosquitto, topics.deadletter("test"))
    got = []
    consumer = buses("consumer", instance="l", header_limits={"max_depth": 4})  # a candidate nests 5 deep
    consumer.subscribe(FILTER, lambda env, topic: got.append(env.message.event_id))
    consumer.start(wait_s=5)
    producer = buses("producer", ledger=False)
    producer.start(wait_s=5)
    producer.publish(TOPIC, *candidate(), timeout=10)
    assert wait_until(lambda: len(dead.messages) == 1)
    assert "header_limits.max_depth (4)" in letters(dead)[0].reason and got == []
    dead.close()


def test_a_message_that_hangs_its_consumer_is_poison_after_max_attempts_restarts(mosquitto, buses, tmp_path):
    """The consumer process hangs in the handler and is killed (as a watchdog would), twice; on
    the third start the message is dead-lettered as poison without running the handler."""
    import subprocess
    from pathlib import Path

    dead = Collector(mosquitto, topics.deadletter("test"))
    out, ledger = tmp_path / "handled.txt", tmp_path / "bus" / "consumer-one.sqlite"
    script = Path(__file__).parents[1] / "support" / "bus_consumer.py"

    status = Collector(mosquitto, topics.service_status("test", "consumer", "one"))

    def consumer(block: bool) -> subprocess.Popen:
        before = sum(1 for m in status.messages if m[1] == b"online")
        proc = subprocess.Popen([sys.executable, str(script), mosquitto.host, str(mosquitto.port), str(out),
                                 "1" if block else "0", str(ledger), "2"], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        # "online" is published after the subscription, on the same connection: once it is
        # seen, the broker has the subscription
        assert wait_until(lambda: sum(1 for m in status.messages if m[1] == b"online") > before)
        return proc

    producer = buses("producer", ledger=False)
    producer.start(wait_s=5)
    msg, blobs = candidate()
    proc = consumer(block=True)
    try:
        producer.publish(TOPIC, msg, blobs, timeout=10)
        for run in (1, 2):
            assert wait_until(lambda: out.exists() and out.read_text().count("start") == run, 30), run
            proc.kill()  # hung: the watchdog restarts it
            proc.wait()
            proc = consumer(block=True)
        assert wait_until(lambda: len(dead.messages) == 1, 30)
        letter = letters(dead)[0]
        assert letter.reason.startswith("poison: no outcome after 2 attempts"), letter.reason
        time.sleep(1)
        assert out.read_text().count("start") == 2  # not run a third time
    finally:
        proc.kill()
        dead.close()
        status.close()
