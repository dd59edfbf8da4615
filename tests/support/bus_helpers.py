"""Helpers of the bus tests: the test topics, a site for a broker, a plain subscriber."""

import time

import paho.mqtt.client as mqtt

from stopline.shared import topics
from stopline.shared.config import SiteConfig

TOPIC = topics.camera_topic("test", "cam1", topics.CANDIDATE)
FILTER = topics.any_camera("test", topics.CANDIDATE)


def site_for(broker, **mqtt_extra) -> SiteConfig:
    return SiteConfig.model_validate({"site": "test", "mqtt": {"host": broker.host, "port": broker.port,
                                                                 **mqtt_extra}})


def wait_until(cond, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


class Collector:
    """A plain paho subscriber recording (topic, payload, retain)."""

    def __init__(self, broker, topic):
        self.messages = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload, m.retain))
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()
