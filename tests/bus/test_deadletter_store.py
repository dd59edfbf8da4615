"""Dead-lettered payloads are kept on disk and can be replayed, against a real mosquitto: a plate
result that ran out of RetryLater attempts during an outage is not lost."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading

import pytest
import yaml
from support.bus_helpers import FILTER, TOPIC, Collector, site_for, wait_until
from support.samples import candidate

from stopline.shared import topics
from stopline.shared.bus import Bus, RetryLater
from stopline.shared.deadletters import DeadLetterStore, store_dir
from stopline.shared.health import ledger_file
from stopline.shared.messages import decode, encode


@pytest.fixture()
def buses(mosquitto, tmp_path):
    made = []

    def make(service, instance="a", store=True, **kw):
        bus = Bus(site_for(mosquitto, **kw), service, instance, ledger=ledger_file(tmp_path, service, instance),
                  deadletters=store_dir(tmp_path, service) if store else None)
        made.append(bus)
        return bus

    yield make
    for b in made:
        b.stop(drain_s=1)


def cli(mosquitto, tmp_path, *args: str) -> subprocess.CompletedProcess:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump({"site": "test", "state_dir": str(tmp_path),
                                         "mqtt": {"host": mosquitto.host, "port": mosquitto.port}}))
    return subprocess.run([sys.executable, "-m", "stopline", "deadletters", args[0], "--config", str(site_file),
                           *args[1:]], capture_output=True, text=True, timeout=120)


def test_a_result_that_ran_out_of_retries_is_kept_and_replayed_once(mosquitto, buses, tmp_path):
    dead = Collector(mosquitto, topics.deadletter("test"))
    database_up = threading.Event()
    got = []

    def ingest(env, topic):
        if not database_up.is_set():
            raise RetryLater("database unavailable")
        got.append(env.message.event_id)

    consumer = buses("consumer", instance="r", reconnect_min_s=0.1, reconnect_max_s=0.1, consumer={"max_attempts": 3})
    consumer.subscribe(FILTER, ingest)
    consumer.start(wait_s=5)
    producer = buses("producer", store=False)
    producer.start(wait_s=5)
    msg, blobs = candidate()
    payload = encode(msg, blobs)
    producer.publish_raw(TOPIC, payload, timeout=10)
    assert wait_until(lambda: len(dead.messages) == 1, 30)
    letter = decode(dead.messages[0][1]).message
    sha = hashlib.sha256(payload).hexdigest()
    assert letter.reason.startswith("poison: no outcome after 3 attempts") and letter.stored == sha
    assert consumer.backlog()[0] == 0  # acknowledged

    kept = store_dir(tmp_path, "consumer")
    assert (kept / f"{sha}.msg").read_bytes() == payload  # complete, not 64 bytes
    meta = json.loads((kept / f"{sha}.json").read_text())
    assert (meta["topic"], meta["attempts"], meta["retryable"], meta["complete"]) == (TOPIC, 3, True, True)
    listed = cli(mosquitto, tmp_path, "list", "--service", "consumer")
    assert listed.returncode == 0 and sha in listed.stdout and "retryable" in listed.stdout, listed

    database_up.set()  # the outage is over
    run = cli(mosquitto, tmp_path, "replay", "--all-retryable")
    assert run.returncode == 0 and f"{sha}: replayed to {TOPIC}" in run.stdout, run
    assert wait_until(lambda: got == [msg.event_id], 20), got
    assert not any(kept.iterdir())  # removed once the broker acknowledged it

    again = cli(mosquitto, tmp_path, "replay", sha)  # a second replay finds nothing to send
    assert again.returncode == 1 and "no kept payload" in again.stderr, again
    producer.publish_raw(TOPIC, payload, timeout=10)  # and a copy that does arrive is a duplicate
    assert wait_until(lambda: consumer.stats.duplicates == 1, 20)
    assert got == [msg.event_id] and len(dead.messages) == 1
    dead.close()


def test_an_unwritable_store_does_not_block_the_consumer(mosquitto, buses, tmp_path):
    dead = Collector(mosquitto, topics.deadletter("test"))
    (tmp_path / "deadletters").write_text("not a folder")  # the store cannot be created
    got = []

    def handle(env, topic):
        if not got:
            got.append(None)
            raise ValueError("bad plate crop")
        got.append(env.message.event_id)

    consumer = buses("consumer", instance="u")
    consumer.subscribe(FILTER, handle)
    consumer.start(wait_s=5)
    producer = buses("producer", store=False)
    producer.start(wait_s=5)
    producer.publish(TOPIC, *candidate(), timeout=10)
    second, blobs = candidate()
    producer.publish(TOPIC, second, blobs, timeout=10)
    assert wait_until(lambda: len(dead.messages) == 1 and got[1:] == [second.event_id], 20), (got, dead.messages)
    letter = decode(dead.messages[0][1]).message
    assert "ValueError: bad plate crop" in letter.reason and letter.stored is None
    assert consumer.backlog()[0] == 0 and consumer.health() == (True, "ok")
    dead.close()


def test_an_oversized_payload_keeps_its_start_and_is_not_replayed(tmp_path):
    store = DeadLetterStore(tmp_path, "consumer")
    payload = bytes(range(256)) * 8
    sha = store.put("t/x", payload, "too big", attempts=0, retryable=False, max_bytes=1000)
    assert store.put("t/x", payload, "too big again", attempts=0, retryable=False, max_bytes=1000) == sha
    (entry,) = store.entries()
    assert entry.sha256 == hashlib.sha256(payload).hexdigest() and entry.reason == "too big again"
    assert entry.path.read_bytes() == payload[:1000] and not entry.complete and entry.payload_bytes == 2048
    with pytest.raises(ValueError, match="only the first bytes"):
        store.replay(entry, lambda topic, data: None)
    assert store.entries() == [entry]


def test_a_replay_the_broker_did_not_acknowledge_keeps_the_entry(tmp_path):
    store = DeadLetterStore(tmp_path, "consumer")
    sha = store.put("t/x", b"payload", "poison", attempts=3, retryable=True, max_bytes=100)

    def broker_away(topic, data):
        raise TimeoutError("no PUBACK")

    with pytest.raises(TimeoutError):
        store.replay(store.entries()[0], broker_away)
    (entry,) = store.entries()
    assert entry.sha256 == sha and entry.path.name == f"{sha}.msg" and entry.path.read_bytes() == b"payload"
    sent = []
    store.replay(entry, lambda topic, data: sent.append((topic, data)))
    assert sent == [("t/x", b"payload")] and store.entries() == [] and not any(tmp_path.iterdir())
