"""Raw MQTT client for the fault tests, run inside a namespace (``ip netns exec NS python mqtt_io.py``).

    watch: subscribe (clean session) and print one JSON line per message, as it arrives:
           {"t": <epoch>, "topic": ..., "bytes": n, "event_id": ..., "head": <first 64 bytes, hex>, "payload": <hex, if small>}
    pub:   publish the bytes of a file once, QoS 1, and wait for the broker's acknowledgement.

Depends on paho only, so the watcher starts quickly.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt


def client(args: argparse.Namespace) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311,
                    clean_session=True)
    if args.user:
        c.username_pw_set(args.user, args.password)
    if args.ca_file:
        c.tls_set(ca_certs=args.ca_file)
    return c


def event_id(payload: bytes) -> str | None:
    """The candidate's event id from a stopline envelope's JSON header (MAGIC, u32 length, header)."""
    try:
        header = json.loads(payload[8 : 8 + int.from_bytes(payload[4:8], "big")])
        return header.get("candidate", {}).get("event_id") or header.get("event_id")
    except (ValueError, AttributeError):
        return None


def watch(args: argparse.Namespace) -> int:
    c = client(args)
    ready = threading.Event()
    lock = threading.Lock()

    def on_connect(cl, u, flags, rc, props=None):
        if rc.is_failure:
            print(json.dumps({"error": str(rc)}), flush=True)
            return
        for t in args.topic:
            cl.subscribe(t, qos=1)

    def on_subscribe(cl, u, mid, rcs, props=None):
        if not ready.is_set():
            ready.set()
            print("READY", flush=True)

    def on_message(cl, u, msg):
        t = time.time()
        with lock:
            print(json.dumps({"t": t, "topic": msg.topic, "bytes": len(msg.payload), "event_id": event_id(msg.payload),
                              "head": bytes(msg.payload[:64]).hex(),
                              # small messages (dead letters, statuses) whole, for the test to decode
                              "payload": bytes(msg.payload).hex() if len(msg.payload) <= 8192 else None}),
                  flush=True)

    c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
    c.connect(args.host, args.port, keepalive=20)
    c.loop_forever(retry_first_connection=True)
    return 0


def pub(args: argparse.Namespace) -> int:
    c = client(args)
    connected = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p=None: connected.set() if not rc.is_failure else None
    c.connect(args.host, args.port, keepalive=20)
    c.loop_start()
    try:
        if not connected.wait(10):
            print("could not connect", file=sys.stderr)
            return 1
        with open(args.file, "rb") as f:
            info = c.publish(args.topic, f.read(), qos=1)
        info.wait_for_publish(30)
        return 0 if info.is_published() else 1
    finally:
        c.disconnect()
        c.loop_stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["watch", "pub"])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--ca-file")
    p.add_argument("--topic", action="append", required=True)
    p.add_argument("--file", help="payload file (pub)")
    args = p.parse_args(argv)
    if args.cmd == "pub":
        args.topic = args.topic[0]
        return pub(args)
    return watch(args)


if __name__ == "__main__":
    sys.exit(main())
