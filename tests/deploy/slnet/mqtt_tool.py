"""Numbered QoS 1 publisher and counting subscriber (paho-mqtt 2), as functions and as a CLI.

The CLI exists so the clients can run inside a network namespace
(``ip netns exec NS python mqtt_tool.py sub ...``); it depends on paho only. Payloads are
``SEQ:<8 digits>:`` plus padding, so a subscriber can count lost and doubled messages.

    python mqtt_tool.py pub --port 1883 --user pole --password pw --topic T --count 100 --rate 20
    python mqtt_tool.py sub --port 1883 --user u --password pw --client-id c --topic F --expect 100
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt


def payload(seq: int, size: int) -> bytes:
    head = b"SEQ:%08d:" % seq
    return head + b"x" * max(0, size - len(head))


def seq_of(data: bytes) -> int | None:
    if data.startswith(b"SEQ:") and len(data) >= 13:
        try:
            return int(data[4:12])
        except ValueError:
            return None
    return None


def make_client(user: str | None, password: str | None, client_id: str = "", clean: bool = True,
                ca_file: str | None = None) -> mqtt.Client:
    client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv311, clean_session=clean)
    if user is not None:
        client.username_pw_set(user, password)
    if ca_file:
        client.tls_set(ca_certs=ca_file)
    client.max_inflight_messages_set(20)
    client.max_queued_messages_set(0)
    return client


def connack(host: str, port: int, user: str | None, password: str | None, timeout: float = 5.0,
            ca_file: str | None = None) -> str:
    """The broker's answer to a connection attempt: 'Success', 'Not authorized', ..."""
    client = make_client(user, password, ca_file=ca_file)
    result: list[str] = []
    done = threading.Event()

    def on_connect(c, u, flags, rc, props=None):
        result.append(str(rc))
        done.set()

    def on_disconnect(c, u, flags, rc, props=None):
        if not result:
            result.append(str(rc))
        done.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.connect(host, port, keepalive=10)
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise TimeoutError(f"no CONNACK from {host}:{port} in {timeout}s")
    finally:
        client.disconnect()
        client.loop_stop()
    return result[0]


@dataclass
class Received:
    messages: list[tuple[str, int | None, bool]] = field(default_factory=list)  # topic, seq, dup
    arrivals: list[tuple[int, float]] = field(default_factory=list)  # seq, wall-clock time
    granted: list[int] = field(default_factory=list)
    connects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def seqs(self) -> list[int]:
        with self.lock:
            return [s for _, s, _ in self.messages if s is not None]

    def summary(self, expect: int | None = None, start: int = 0) -> dict:
        seqs = self.seqs()
        distinct = set(seqs)
        out = {"received": len(seqs), "distinct": len(distinct), "duplicates": len(seqs) - len(distinct),
               "dup_flagged": sum(1 for _, _, d in self.messages if d), "granted_qos": self.granted,
               "connects": self.connects, "topics": sorted({t for t, _, _ in self.messages})}
        if expect is not None:
            out["missing"] = sorted(set(range(start, start + expect)) - distinct)
            out["unexpected"] = sorted(distinct - set(range(start, start + expect)))
        return out


class Subscriber:
    """A subscriber that counts numbered messages; persistent session unless ``clean``."""

    def __init__(self, host: str, port: int, user: str | None, password: str | None, topic: str,
                 client_id: str = "", clean: bool = False, ca_file: str | None = None,
                 log_path: str | None = None):
        self.topic = topic
        # one line per message, written before paho acknowledges it: survives a SIGKILL
        self._log = open(log_path, "a", buffering=1) if log_path else None
        self.got = Received()
        self.subscribed = threading.Event()
        self.client = make_client(user, password, client_id, clean, ca_file)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        self.host, self.port = host, port

    def _on_connect(self, client, userdata, flags, rc, props=None):
        if rc.is_failure:
            return
        self.got.connects += 1
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client, userdata, mid, rcs, props=None):
        self.got.granted = [rc.value for rc in rcs]
        self.subscribed.set()

    def _on_message(self, client, userdata, msg):
        with self.got.lock:
            seq = seq_of(msg.payload)
            self.got.messages.append((msg.topic, seq, bool(msg.dup)))
            if seq is not None:
                self.got.arrivals.append((seq, round(time.time(), 3)))
            if self._log is not None:
                self._log.write(f"{seq}\n")

    def start(self, timeout: float = 10.0) -> "Subscriber":
        self.client.connect_async(self.host, self.port, keepalive=10)
        self.client.loop_start()
        if not self.subscribed.wait(timeout):
            raise TimeoutError(f"subscription to {self.topic} not acknowledged in {timeout}s")
        return self

    def wait_for(self, count: int, timeout: float, start: int = 0) -> bool:
        """Until ``count`` distinct numbers from ``start`` arrived, or ``timeout``."""
        want = set(range(start, start + count))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if want <= set(self.got.seqs()):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_numbered(host: str, port: int, user: str | None, password: str | None, topic: str,
                     count: int, start: int = 0, rate: float = 0.0, size: int = 64,
                     client_id: str = "", ca_file: str | None = None, timeout: float = 60.0,
                     retain: bool = False) -> dict:
    """Publish ``count`` numbered QoS 1 messages; returns how many the broker acknowledged."""
    client = make_client(user, password, client_id, True, ca_file)
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p=None: connected.set() if not rc.is_failure else None
    client.connect(host, port, keepalive=30)
    client.loop_start()
    t0, started_at = time.monotonic(), time.time()
    try:
        if not connected.wait(10):
            raise TimeoutError(f"publisher could not connect to {host}:{port}")
        infos = []
        for i in range(count):
            infos.append(client.publish(topic, payload(start + i, size), qos=1, retain=retain))
            if rate > 0:
                time.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        acked = sum(1 for info in infos if info.is_published())
    finally:
        client.disconnect()
        client.loop_stop()
    return {"published": count, "acked": acked, "started_at": started_at,
            "seconds": round(time.monotonic() - t0, 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="numbered QoS 1 publisher / counting subscriber")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("pub", "sub"):
        s = sub.add_parser(name)
        s.add_argument("--host", default="127.0.0.1")
        s.add_argument("--port", type=int, required=True)
        s.add_argument("--user")
        s.add_argument("--password")
        s.add_argument("--client-id", default="")
        s.add_argument("--topic", required=True)
        s.add_argument("--ca-file")
        s.add_argument("--start", type=int, default=0)
    pub = sub.choices["pub"]
    pub.add_argument("--count", type=int, required=True)
    pub.add_argument("--rate", type=float, default=0.0, help="messages per second (0: as fast as possible)")
    pub.add_argument("--size", type=int, default=64)
    pub.add_argument("--timeout", type=float, default=120.0)
    s = sub.choices["sub"]
    s.add_argument("--expect", type=int, required=True)
    s.add_argument("--timeout", type=float, default=120.0)
    s.add_argument("--settle", type=float, default=2.0, help="seconds to keep listening for duplicates")
    s.add_argument("--log", help="append each received number to this file as it arrives")
    args = p.parse_args(argv)

    if args.cmd == "pub":
        result = publish_numbered(args.host, args.port, args.user, args.password, args.topic, args.count,
                                  args.start, args.rate, args.size, args.client_id, args.ca_file, args.timeout)
        print(json.dumps(result), flush=True)
        return 0 if result["acked"] == result["published"] else 1

    subscriber = Subscriber(args.host, args.port, args.user, args.password, args.topic,
                            args.client_id, clean=False, ca_file=args.ca_file, log_path=args.log).start()
    print("READY", flush=True)
    complete = subscriber.wait_for(args.expect, args.timeout, args.start)
    time.sleep(args.settle)
    subscriber.stop()
    result = subscriber.got.summary(args.expect, args.start)
    result["complete"] = complete
    result["arrivals"] = subscriber.got.arrivals
    print(json.dumps(result), flush=True)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
