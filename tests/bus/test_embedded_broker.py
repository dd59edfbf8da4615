"""The demo's embedded broker carries the bus's messages (QoS 1, no shared subscriptions)."""

import time

from support.mosquitto import free_port
from support.samples import candidate

from stopline.embedded_broker import EmbeddedBroker
from stopline.shared import topics
from stopline.shared.bus import Bus
from stopline.shared.config import SiteConfig


def test_bus_round_trip_through_embedded_broker():
    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    site = SiteConfig.model_validate({"site": "demo", "mqtt": {"port": port, "shared_subscriptions": False}})
    got = []
    consumer = Bus(site, "consumer", "a")
    consumer.subscribe(topics.any_camera("demo", topics.CANDIDATE), lambda env, t: got.append(env.message.event_id),
                       group="consumer")
    producer = Bus(site, "producer", "a")
    try:
        consumer.start(wait_s=10)
        producer.start(wait_s=10)
        msg, blobs = candidate(site="demo")
        producer.publish(topics.camera_topic("demo", "cam1", topics.CANDIDATE), msg, blobs, timeout=10)
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == [msg.event_id]
    finally:
        producer.stop(1)
        consumer.stop(1)
        broker.stop()
