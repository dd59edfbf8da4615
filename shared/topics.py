"""MQTT topic names: everything under ``stopline/<site>/``, per camera where it applies."""

from __future__ import annotations

ROOT = "stopline"

CANDIDATE = "violation/candidate"  # vehicle detector -> plate finder
PLATES = "violation/plates"  # plate finder -> plate reader
READ = "violation/read"  # plate reader -> violation desk
STATUS = "violation/status"  # violation desk -> anyone
CLIP = "violation/clip"  # vehicle detector -> violation desk (evidence clip, after the candidate)
SIGNAL = "signal"  # signal controller -> vehicle detector


def camera_topic(site: str, camera: str, leaf: str) -> str:
    return f"{ROOT}/{site}/{camera}/{leaf}"


def any_camera(site: str, leaf: str) -> str:
    return f"{ROOT}/{site}/+/{leaf}"


def shared(group: str, topic: str) -> str:
    """A shared subscription: replicas in one group split the messages between them."""
    return f"$share/{group}/{topic}"


def service_status(site: str, service: str, instance: str) -> str:
    """Retained ``online``/``offline`` (the last will sets ``offline``)."""
    return f"{ROOT}/{site}/status/{service}/{instance}"


def all_service_status(site: str) -> str:
    return f"{ROOT}/{site}/status/#"


def deadletter(site: str) -> str:
    return f"{ROOT}/{site}/deadletter"


def camera_of(topic: str) -> str | None:
    parts = topic.split("/")
    return parts[2] if len(parts) > 3 and parts[0] == ROOT else None
