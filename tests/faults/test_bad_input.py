"""Bad messages fed into the running three-host pipeline, at each service's input topic, through
the brokers as deployed (credentials and ACL included): each is dead-lettered with its reason
(on the central broker's ``stopline/elm-st/deadletter``, the pole's by way of the bridge) and
logged, no service stops, and the scene streamed through afterwards is delivered exactly once.

The bus's own handling of each kind is unit-tested in tests/bus; this is the same at the level
of the real services, their limits and their topics.
"""

from __future__ import annotations

import pytest
from support.samples import candidate
from threehost import assert_exactly_once, wait_until

from stopline.shared.messages import DeadLetter, PlateCandidates, decode, encode

pytestmark = [pytest.mark.timeout(600)]

SITE, CAM = "elm-st", "north"


def topic(stage: str) -> str:
    return f"stopline/{SITE}/{CAM}/violation/{stage}"


def other_version(payload: bytes, schema: str, version: int) -> bytes:
    """The same message claiming another version of its schema (same length: header intact)."""
    old = f'"schema":"{schema}"'.encode()
    assert payload.count(old) == 1
    return payload.replace(old, f'"schema":"{schema.split("/")[0]}/{version}"'.encode())


def test_malformed_oversized_and_wrong_version_messages_are_dead_lettered(three_hosts, baseline):
    pipe = three_hosts(realtime=False)
    dead = pipe.watch("deadletter")
    pipe.start_all(detector=False)

    vc, blobs = candidate(camera=CAM, site=SITE)
    cand_bytes = encode(vc, blobs)
    plates_bytes = encode(PlateCandidates(candidate=vc.candidate, plates=[]), blobs)
    oversized = cand_bytes + b"\0" * (16_100_000 - len(cand_bytes))  # over max_message_bytes (16e6),
    #                                                     under the brokers' max_packet_size (16 MiB)
    sent = {
        # the plate finder's input, on the pole's edge broker
        "plate-finder": [
            ("pole", "candidate", b"\x00garbage from a confused client", "pole", "bad magic"),
            ("pole", "candidate", other_version(cand_bytes, "violation_candidate/1", 9), "pole",
             "unsupported schema version"),
            ("pole", "candidate", oversized, "pole", "exceeds the limit"),
        ],
        # the plate readers', on the central broker, as the pole's bridge user would send it
        "plate-reader": [
            ("gw", "plates", b"STL1\xff\xff\xff\xffnot json", "cam-north", "does not fit the payload"),
            ("gw", "plates", other_version(plates_bytes, "plate_candidates/1", 2), "cam-north",
             "unsupported schema version"),
        ],
        # the desk's, as a plate reader would send it
        "violation-desk": [
            ("gw", "read", b"{\"schema\": \"plate_read/1\"}", "plate-reader", "bad magic"),
            ("gw", "read", plates_bytes, "plate-reader", "handler error"),  # valid, but not a plate read
        ],
    }
    for service, items in sent.items():
        for host, stage, payload, user, _ in items:
            pipe.inject(host, topic(stage), payload, user)
    want = sum(len(v) for v in sent.values())
    assert wait_until(lambda: dead.count("deadletter") >= want, 90), \
        f"{dead.count('deadletter')} of {want} dead letters\n" + pipe.log_tail()

    letters = [decode(bytes.fromhex(m["payload"])).message for m in dead.of("deadletter")]
    assert all(isinstance(m, DeadLetter) for m in letters)
    for service, items in sent.items():
        got = [m for m in letters if m.service == service]
        assert len(got) == len(items), (service, [(m.topic, m.reason) for m in got])
        for (_, stage, payload, _, reason), letter in zip(items, got):
            assert letter.topic == topic(stage) and reason in letter.reason, (reason, letter)
            assert letter.payload_bytes == len(payload)
        instance = "reader-0" if service == "plate-reader" else "t1"
        assert pipe.log_text(service, instance).count("dead-lettering a message from") == len(items), service
    assert all(code is None for code in pipe.running().values()), pipe.running()

    # every service still does its job: the scene goes through exactly once
    pipe.start("vehicle-detector")
    assert_exactly_once(pipe, baseline)
    dead.close()
