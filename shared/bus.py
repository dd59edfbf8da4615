"""The MQTT bus every service uses (paho-mqtt 2.x).

Guarantees, in order of importance:
- QoS 1 and a persistent session (fixed client id, clean_session=False): the broker keeps what a
  service has not acknowledged while it is away.
- Manual acknowledgement: a message is acknowledged only after its handler returned, and the
  handler publishes its output with ``publish`` which blocks until the broker acknowledged it. A
  crash in between means redelivery, never loss; consumers are idempotent by event id.
- Every message gets an outcome. Bad payloads (not decodable, too big, over the header limits,
  wrong schema version) and handlers that fail for good, whatever they raise, go to
  ``stopline/<site>/deadletter`` with the reason, are logged, and are acknowledged so they do not
  block the queue. A handler raising ``RetryLater`` (e.g. database down) is retried with backoff
  and not acknowledged, up to ``mqtt.consumer.max_attempts`` runs of the same message, counted on
  disk across restarts (``AttemptLedger``); then it is dead-lettered as poison.
- A dead-lettered payload is kept on disk (``DeadLetterStore``) before it is acknowledged, so it
  can be replayed (``stopline deadletters replay``); a store that fails is logged, never waited on.
- A retained status per service instance: ``online``, ``unhealthy: <why>`` (set by the health
  writer, see ``health()``), and ``offline`` as the last will.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from stopline.shared import topics
from stopline.shared.config import MQTTConfig, SiteConfig
from stopline.shared.deadletters import DeadLetterStore
from stopline.shared.ledger import AttemptLedger
from stopline.shared.messages import DeadLetter, Envelope, Message, MessageError, decode, encode

log = logging.getLogger(__name__)

Handler = Callable[[Envelope, str], None]

ONLINE = b"online"
OFFLINE = b"offline"


class RetryLater(Exception):
    """Raised by a handler when a dependency is down: the message stays unacknowledged and the
    handler is called again after a backoff."""


class BusClosed(Exception):
    """The bus was stopped while an operation waited."""


@dataclass
class BusStats:
    connected: bool = False
    received: int = 0
    handled: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    poison: int = 0
    retries: int = 0
    published: int = 0
    last_message_at: float | None = None
    started_at: float = field(default_factory=time.time)


BatchHandler = Callable[[list[tuple[Envelope, str]]], None]


@dataclass
class _Subscription:
    topic: str
    handler: BatchHandler
    group: str | None
    max_batch: int = 1


def default_instance() -> str:
    return os.environ.get("STOPLINE_INSTANCE") or socket.gethostname().split(".")[0]


class Bus:
    def __init__(
        self,
        site: SiteConfig,
        service: str,
        instance: str | None = None,
        *,
        persistent: bool = True,
        dedupe_window: int = 10_000,
        ledger: str | Path | None = None,
        deadletters: str | Path | None = None,
    ):
        """``ledger``: the SQLite file counting attempts per message across restarts (services
        keep it in their state dir); None counts in memory only. ``deadletters``: the folder
        keeping dead-lettered payloads (``deadletters.store_dir``); None keeps none."""
        self.site = site.site
        self.config: MQTTConfig = site.mqtt
        self.service = service
        self.instance = instance or default_instance()
        self.client_id = f"stopline-{self.site}-{service}-{self.instance}"[:128]
        self.status_topic = topics.service_status(self.site, service, self.instance)
        self.stats = BusStats()
        self._subs: list[_Subscription] = []
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._inbox: queue.Queue[mqtt.MQTTMessage | None] = queue.Queue()
        self._done: OrderedDict[str, None] = OrderedDict()
        self._dedupe_window = dedupe_window
        self._worker: threading.Thread | None = None
        self._ledger = AttemptLedger(ledger)
        self._store = DeadLetterStore(deadletters, service) if deadletters is not None else None
        self._track = threading.Lock()
        self._unacked: dict[int, float] = {}  # mid -> when received (monotonic)
        self._progress_at = time.monotonic()  # last acknowledgement, or when work arrived while idle
        self._retrying: str | None = None  # why the message(s) in hand wait, while they do
        self._announced = ONLINE
        self._acked: set[int] = set()
        self._client = self._make_client(persistent)

    # ------------------------------------------------------------------ set-up

    def _make_client(self, persistent: bool) -> mqtt.Client:
        cfg = self.config
        protocol = mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311
        kwargs: dict = dict(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=protocol,
            manual_ack=True,
        )
        if protocol == mqtt.MQTTv311:
            kwargs["clean_session"] = not persistent
        client = mqtt.Client(**kwargs)
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls is not None:
            client.tls_set(
                ca_certs=cfg.tls.ca_file,
                certfile=cfg.tls.cert_file,
                keyfile=cfg.tls.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(cfg.tls.insecure)
        client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(
            min_delay=max(1, int(cfg.reconnect_min_s)), max_delay=max(1, int(cfg.reconnect_max_s))
        )
        client.max_inflight_messages_set(20)
        client.max_queued_messages_set(0)  # unbounded: QoS 1 output is never dropped client-side
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def subscribe(self, topic: str, handler: Handler, group: str | None = None) -> None:
        """Handle messages on ``topic`` one at a time; with ``group``, replicas share them
        ($share/<group>/...)."""
        self.subscribe_batch(topic, lambda items: handler(*items[0]), group, max_batch=1)

    def subscribe_batch(self, topic: str, handler: BatchHandler, group: str | None = None,
                        max_batch: int = 100) -> None:
        """Like ``subscribe``, but ``handler`` gets a list: the message that arrived plus up to
        ``max_batch - 1`` more already waiting for this subscription (it never waits for more),
        so under load one call (e.g. one database transaction) covers many messages and when
        idle each message goes alone. The whole batch is acknowledged after the handler
        returns; ``RetryLater`` retries the batch; any other error re-runs the messages one by
        one so that only the bad one is dead-lettered."""
        self._subs.append(_Subscription(topic, handler, group, max(1, max_batch)))
        if self._connected.is_set():
            self._client.subscribe(self._filter(self._subs[-1]), qos=1)

    def _filter(self, sub: _Subscription) -> str:
        if sub.group and self.config.shared_subscriptions:
            return topics.shared(sub.group, sub.topic)
        return sub.topic

    def start(self, wait_s: float | None = None) -> None:
        """Connect in the background (retrying with backoff) and start the worker."""
        self._worker = threading.Thread(target=self._work, name=f"{self.service}-worker", daemon=True)
        self._worker.start()
        self._client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s)
        self._client.loop_start()
        if wait_s is not None and not self._connected.wait(wait_s):
            log.warning("%s: broker %s:%s not reachable yet; retrying in the background",
                        self.service, self.config.host, self.config.port)

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self._connected.wait(timeout)

    def stop(self, drain_s: float = 10.0) -> None:
        """Finish the message in hand, leave the rest unacknowledged, say offline, disconnect."""
        self._stopping.set()
        self._inbox.put(None)
        if self._worker is not None:
            self._worker.join(drain_s)
        if self._connected.is_set():
            info = self._client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(2.0)
            except (RuntimeError, ValueError):
                pass
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self.stats.connected = False

    @property
    def healthy(self) -> bool:
        return self.health()[0]

    def health(self) -> tuple[bool, str]:
        """(healthy, why): connected, worker alive, and not stalled. Stalled: messages wait and
        none was finished for ``consumer.stall_after_s``, or one was received and not
        acknowledged for ``consumer.max_unacked_age_s``."""
        if not self._connected.is_set():
            return False, "not connected to the broker"
        if self._worker is not None and not self._worker.is_alive():
            return False, "consumer worker stopped"
        c = self.config.consumer
        waiting, oldest_s, idle_s = self.backlog()
        retrying = f" ({self._retrying})" if self._retrying else ""
        if waiting and idle_s > c.stall_after_s:
            return False, (f"stalled: {waiting} message(s) waiting and none finished for {idle_s:.0f}s"
                           f"{retrying}")
        if waiting and oldest_s > c.max_unacked_age_s:
            return False, f"stalled: a message unacknowledged for {oldest_s:.0f}s{retrying}"
        return True, "ok"

    def backlog(self) -> tuple[int, float, float]:
        """(messages received and not acknowledged, age of the oldest in s, s since progress)."""
        now = time.monotonic()
        with self._track:
            oldest = min(self._unacked.values(), default=now)
            return len(self._unacked), now - oldest, now - self._progress_at

    def announce(self, state: bytes) -> None:
        """Set the retained status (``online`` or ``unhealthy: <why>``) without waiting."""
        if state != self._announced and self._connected.is_set():
            self._client.publish(self.status_topic, state, qos=1, retain=True)
            self._announced = state

    # ------------------------------------------------------------------ callbacks (network thread)

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            log.error("%s: broker refused the connection: %s", self.service, reason_code)
            return
        log.info("%s: connected to %s:%s as %s (session present: %s)", self.service,
                 self.config.host, self.config.port, self.client_id, flags.session_present)
        for sub in self._subs:
            client.subscribe(self._filter(sub), qos=1)
        client.publish(self.status_topic, ONLINE, qos=1, retain=True)
        self._announced = ONLINE
        self.stats.connected = True
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self._connected.clear()
        self.stats.connected = False
        if not self._stopping.is_set():
            log.warning("%s: disconnected from broker (%s); reconnecting", self.service, reason_code)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        self.stats.received += 1
        if msg.qos > 0:
            with self._track:
                now = time.monotonic()
                if not self._unacked:
                    self._progress_at = now  # the idle time before this message is no stall
                self._unacked.setdefault(msg.mid, now)
        self._inbox.put(msg)

    # ------------------------------------------------------------------ publishing

    def publish(self, topic: str, message: Message, blobs: dict[str, bytes] | None = None,
                retain: bool = False, timeout: float | None = None) -> None:
        self.publish_raw(topic, encode(message, blobs), retain=retain, timeout=timeout)

    def publish_raw(self, topic: str, payload: bytes, retain: bool = False,
                    timeout: float | None = None) -> None:
        """QoS 1 publish that returns once the broker acknowledged it. While the broker is away
        paho keeps the message and resends it on reconnect; this call keeps waiting (until
        ``timeout``, if given, then TimeoutError; or until the bus stops, then BusClosed)."""
        if len(payload) > self.config.max_message_bytes:
            raise MessageError(f"payload of {len(payload)} bytes exceeds max_message_bytes")
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            raise RuntimeError("paho outgoing queue full")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not _acknowledged(info, 0.2):
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"broker did not acknowledge a message on {topic} in {timeout}s")
            if self._stopping.is_set() and not self._connected.is_set():
                raise BusClosed("bus stopped before the broker acknowledged")
        self.stats.published += 1

    def dead_letter(self, topic: str, payload: bytes, reason: str, attempts: int = 0,
                    retryable: bool = False) -> None:
        """Keep the payload on disk (when the bus has a store), then publish the dead letter,
        waiting for the broker like any output (``BusClosed`` when the bus stops first: the
        message then stays unacknowledged and comes back)."""
        log.warning("%s: dead-lettering a message from %s: %s", self.service, topic, reason)
        stored = None
        if self._store is not None:
            try:
                stored = self._store.put(topic, payload, reason[:2000], attempts=attempts, retryable=retryable,
                                         max_bytes=self.config.max_message_bytes)
            except Exception:  # a full or unwritable disk: the dead letter still goes out
                log.exception("%s: could not keep the dead-lettered payload in %s", self.service, self._store.root)
        letter = DeadLetter(service=self.service, topic=topic, reason=reason[:2000],
                            payload_bytes=len(payload), payload_head=payload[:64].hex(), stored=stored)
        self.publish(topics.deadletter(self.site), letter)
        self.stats.dead_letters += 1

    # ------------------------------------------------------------------ consuming (worker thread)

    def _work(self) -> None:
        while True:
            msg = self._inbox.get()
            if msg is None or self._stopping.is_set():
                return
            try:
                self._dispatch(msg)
            except BusClosed:
                return
            except Exception:  # never let the worker die (the messages in hand got their outcome)
                log.exception("%s: unexpected error handling %s", self.service, msg.topic)

    def _sub_for(self, topic: str) -> _Subscription | None:
        for sub in self._subs:
            if mqtt.topic_matches_sub(sub.topic, topic):
                return sub
        return None

    def _dispatch(self, msg: mqtt.MQTTMessage) -> None:
        sub = self._sub_for(msg.topic)
        if sub is None:
            self._ack(msg)
        else:
            self._handle(sub, msg)

    def _handle(self, sub: _Subscription, first: mqtt.MQTTMessage) -> None:
        msgs, later = [first], []
        while len(msgs) < sub.max_batch:
            try:
                nxt = self._inbox.get_nowait()
            except queue.Empty:
                break
            if nxt is None:  # stop sentinel: leave it for the worker loop
                self._inbox.put(None)
                break
            if self._sub_for(nxt.topic) is sub:
                msgs.append(nxt)
            else:
                later.append(nxt)
                break  # keep the order of other subscriptions' messages
        self._acked: set[int] = set()  # messages of this batch acknowledged so far
        try:
            self._handle_batch(sub, msgs)
        except BusClosed:
            raise
        except Exception as e:  # a fault of the bus itself: still no message without an outcome
            log.exception("%s: internal error on %d message(s) from %s", self.service, len(msgs), first.topic)
            for msg in msgs:
                if id(msg) not in self._acked:
                    self._reject(msg, f"internal error: {type(e).__name__}: {e}")
        while len(self._done) > self._dedupe_window:
            self._done.popitem(last=False)
        self.stats.last_message_at = time.time()
        for msg in later:
            self._dispatch(msg)

    def _handle_batch(self, sub: _Subscription, msgs: list[mqtt.MQTTMessage]) -> None:
        items: list[tuple[Envelope, str]] = []
        taken: list[mqtt.MQTTMessage] = []
        for msg in msgs:
            payload = bytes(msg.payload)
            try:
                env = decode(payload, self.config.max_message_bytes, self.config.header_limits)
            except MessageError as e:
                self._reject(msg, str(e))
                continue
            except Exception as e:  # a decoder fault must not leave the message without an outcome
                log.exception("%s: decoder failed on a message from %s", self.service, msg.topic)
                self._reject(msg, f"undecodable: {type(e).__name__}: {e}")
                continue
            event_id = getattr(env.message, "event_id", None)
            if event_id is not None and event_id in self._done:
                self.stats.duplicates += 1
                self._ack(msg)
                continue
            items.append((env, msg.topic))
            taken.append(msg)
        if not items:
            return
        keys = [_key(env, msg) for (env, _), msg in zip(items, taken)]
        known = self._ledger.attempts(keys)
        limit = self.config.consumer.max_attempts
        fresh = [i for i, k in enumerate(keys) if known.get(k, (0, None))[0] < limit]
        for i in set(range(len(keys))) - set(fresh):  # redelivered after too many runs: poison
            count, last = known[keys[i]]
            self._poison(taken[i], keys[i], f"no outcome after {count} attempts "
                                            f"(last: {last or 'the consumer stopped while handling it'})",
                         (last or "").startswith("RetryLater"))
        items, taken, keys = [items[i] for i in fresh], [taken[i] for i in fresh], [keys[i] for i in fresh]
        if not items:
            return
        status, why = self._call(sub, items, keys)
        if status != "ok" and len(items) == 1:
            self._fail(taken[0], keys[0], status, why)
            return
        if status != "ok":  # find the bad one(s): each alone, once more when the batch ran out of attempts
            for item, msg, key in zip(items, taken, keys):
                one, why = self._call(sub, [item], [key], once=status == "poison")
                if one == "ok":
                    self._finish(item[0], msg, key)
                else:
                    self._fail(msg, key, one, why)
            return
        for (env, _), msg, key in zip(items, taken, keys):
            self._finish(env, msg, key)

    def _call(self, sub: _Subscription, items: list[tuple[Envelope, str]], keys: list[str],
              once: bool = False) -> tuple[str, str]:
        """Run the handler, retrying on RetryLater: ("ok", ""), ("error", why) when it failed for
        good, ("poison", why) when the messages ran out of attempts (or ``once`` and RetryLater)."""
        delay = self.config.reconnect_min_s
        limit = self.config.consumer.max_attempts
        try:
            while True:
                runs = self._ledger.start(keys)
                try:
                    sub.handler(items)
                    return "ok", ""
                except RetryLater as e:
                    self._ledger.failed(keys, f"RetryLater: {e}")
                    if once or runs >= limit:
                        return "poison", f"no outcome after {runs} attempts (last: RetryLater: {e})"
                    self.stats.retries += 1
                    self._retrying = f"retrying: {e}; attempt {runs} of {limit}"
                    log.warning("%s: %s; retrying %d message(s) in %.1fs (attempt %d of %d)", self.service, e,
                                len(items), delay, runs, limit)
                    if self._stopping.wait(delay):
                        raise BusClosed from None  # leave unacknowledged: redelivered later
                    delay = min(delay * 2, self.config.reconnect_max_s)
                except BusClosed:
                    raise
                except Exception as e:
                    log.exception("%s: handler failed on %d message(s) from %s", self.service, len(items),
                                  items[0][1])
                    return "error", f"handler error: {type(e).__name__}: {e}"
        finally:
            self._retrying = None

    def _finish(self, env: Envelope, msg: mqtt.MQTTMessage, key: str) -> None:
        event_id = getattr(env.message, "event_id", None)
        if event_id is not None:
            self._done[event_id] = None
        self.stats.handled += 1
        self._ledger.finish([key])
        self._ack(msg)

    def _fail(self, msg: mqtt.MQTTMessage, key: str, status: str, why: str) -> None:
        if status == "poison":  # from _call: the last run asked to retry
            self._poison(msg, key, why, retryable=True)
        else:
            self._reject(msg, why, key)

    def _poison(self, msg: mqtt.MQTTMessage, key: str, why: str, retryable: bool) -> None:
        self.stats.poison += 1
        self._reject(msg, f"poison: {why}", key, retryable)

    def _reject(self, msg: mqtt.MQTTMessage, reason: str, key: str | None = None, retryable: bool = False) -> None:
        """Dead-letter and acknowledge: the message's outcome is the dead letter."""
        attempts = 0
        if key is not None:
            try:
                attempts = self._ledger.attempts([key]).get(key, (0, None))[0]
            except Exception:
                log.exception("%s: could not read the attempt ledger", self.service)
        self.dead_letter(msg.topic, bytes(msg.payload), reason, attempts, retryable)
        if key is not None:
            try:
                self._ledger.finish([key])
            except Exception:  # the ledger's disk: the dead letter is out, the message is done
                log.exception("%s: could not update the attempt ledger", self.service)
        self._ack(msg)

    def _ack(self, msg: mqtt.MQTTMessage) -> None:
        self._acked.add(id(msg))
        if msg.qos > 0:
            with self._track:  # before the PUBACK: the broker may reuse the mid right after it
                self._unacked.pop(msg.mid, None)
                self._progress_at = time.monotonic()
            self._client.ack(msg.mid, msg.qos)


def _key(env: Envelope, msg: mqtt.MQTTMessage) -> str:
    """What the attempt ledger counts a message by: its event id, else its payload's SHA-256."""
    event_id = getattr(env.message, "event_id", None)
    if event_id:
        return f"{env.message.kind}:{event_id}"
    return "sha256:" + hashlib.sha256(msg.payload).hexdigest()


def _acknowledged(info: mqtt.MQTTMessageInfo, wait_s: float) -> bool:
    """Whether the broker acknowledged the message, waiting up to ``wait_s``.

    paho's public ``wait_for_publish`` raises at once for a message queued while disconnected
    (rc NO_CONN) although paho still sends it on reconnect and marks it published on PUBACK;
    so this reads the published flag directly (paho-mqtt is pinned below 3)."""
    with info._condition:
        if not info._published:
            info._condition.wait(wait_s)
        return info._published
