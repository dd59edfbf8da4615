"""Site and camera configuration, validated by pydantic.

One YAML site file is read by every service. Unknown keys are refused; a validation error
names the field path (``ConfigError``), and the CLI exits with status 2. Secrets can be
overridden from the environment (``STOPLINE_MQTT_PASSWORD``, ``STOPLINE_DATABASE_URL``, ...).
A camera's geometry may live inline or in its own ``camera.yaml`` (the file ``stopline sim``
writes), referenced by ``file:`` relative to the site file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Point = tuple[float, float]


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file and field."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


# ----------------------------------------------------------------------------- camera geometry


class Box(StrictModel):
    """Axis-aligned pixel rectangle (top-left x, y, width, height)."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(gt=0)
    h: int = Field(gt=0)

    def xyxy(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.x + self.w, self.y + self.h)


class Lane(StrictModel):
    id: str
    polygon: list[Point] = Field(min_length=3, description="lane area in pixels")
    signal_group: str = "main"
    movement: Literal["straight", "left", "right", "straight_right", "straight_left"] = "straight"


class ExemptZone(StrictModel):
    """Area where a vehicle that crosses on red is not a violation (e.g. right turn on red)."""

    name: str
    polygon: list[Point] = Field(min_length=3)


class IgnoreZone(StrictModel):
    """Area the plate finder and reader never look in: the camera's burned-in overlay (date,
    time, camera name, logo). ``stopline camera check`` proposes them."""

    name: str = "overlay"
    polygon: list[Point] = Field(min_length=3, description="pixels, in the frame_size geometry")


class SignalHead(StrictModel):
    id: str
    group: str = "main"
    roi: Box
    layout: Literal["vertical", "horizontal"] = "vertical"


class ScheduleConfig(StrictModel):
    """A fixed-time plan: green, amber, then red for the rest of the cycle (all-red included)."""

    cycle_s: float = Field(gt=0)
    green_s: float = Field(ge=0)
    amber_s: float = Field(ge=0)
    offset_s: float = 0.0

    @model_validator(mode="after")
    def _fits(self) -> "ScheduleConfig":
        if self.green_s + self.amber_s > self.cycle_s:
            raise ValueError("green_s + amber_s must not exceed cycle_s")
        return self


class SignalConfig(StrictModel):
    mode: Literal["roi", "schedule", "mqtt", "constant"] = "roi"
    heads: list[SignalHead] = Field(default_factory=list)
    schedule: ScheduleConfig | None = None
    constant: Literal["red", "amber", "green"] | None = None
    mqtt_topic: str | None = Field(
        default=None, description="topic of the signal controller; default stopline/<site>/<camera>/signal"
    )
    clock_offset_s: float = Field(default=0.0, description="controller clock minus camera clock")
    smoothing_frames: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _mode_needs(self) -> "SignalConfig":
        if self.mode == "roi" and not self.heads:
            raise ValueError("mode 'roi' needs at least one entry in heads")
        if self.mode == "schedule" and self.schedule is None:
            raise ValueError("mode 'schedule' needs a schedule")
        if self.mode == "constant" and self.constant is None:
            raise ValueError("mode 'constant' needs constant: red|amber|green")
        return self


class RulesConfig(StrictModel):
    grace_s: float = Field(default=0.0, ge=0, description="time into red before a crossing counts")
    min_speed_px_s: float = Field(default=20.0, ge=0, description="slower crossings are creeping")
    amber_is_violation: bool = False
    min_amber_s: float | None = Field(
        default=None, ge=0, le=10, description="a red-light violation after a shorter (or unmeasured) amber is "
        "marked not enforceable instead of queued for approval, s")


class EvidenceConfig(StrictModel):
    burst_size: int = Field(default=4, ge=3, le=6)
    jpeg_quality: int = Field(default=88, ge=30, le=100)
    max_width: int = Field(default=1280, ge=160)
    blur_others: bool = Field(default=False, description="blur plates/faces of other road users")
    signing_key: str | None = Field(default=None, description="Ed25519 private key file (PEM)")
    clip_before_s: float = Field(default=3.0, ge=0, le=10, description="evidence clip: seconds before the crossing")
    clip_after_s: float = Field(default=3.0, ge=0, le=10, description="evidence clip: seconds after the crossing")
    clip_fps: float = Field(default=10.0, ge=2, le=25, description="evidence clip frame rate")
    clip_codec: Literal["h264", "vp8", "none"] = Field(
        default="h264", description="h264 (MP4) or vp8 (WebM); none: no clip")
    clip_max_bytes: int = Field(default=1_500_000, ge=100_000, le=8_000_000,
                                description="bit-rate cap so a clip stays under this size")
    clip_preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = Field(
        default="superfast", description="h264 encoder speed: slower presets spend more CPU per clip "
        "(veryfast: 1.6x superfast's) for smaller clips or better pictures within clip_max_bytes")


class CameraConfig(StrictModel):
    """What a user writes for one camera view (also what ``stopline sim`` writes)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str = ""
    source: str | None = Field(default=None, description="file, rtsp://, http://, device index or folder")
    loop: bool = False
    frame_size: tuple[int, int] | None = Field(default=None, description="width, height the geometry is drawn for")
    fps: float | None = None
    stop_line: list[Point] = Field(min_length=2, description="polyline in pixels")
    travel_direction: Point = Field(description="image-space direction vehicles travel in, e.g. [0, 1] = down")
    lanes: list[Lane] = Field(default_factory=list)
    exempt_zones: list[ExemptZone] = Field(default_factory=list)
    ignore_zones: list[IgnoreZone] = Field(default_factory=list, description="overlay text: never a plate")
    signal: SignalConfig
    rules: RulesConfig = Field(default_factory=RulesConfig)
    evidence: EvidenceConfig = Field(default_factory=EvidenceConfig)
    region: Literal["auto", "us", "eu", "br"] = "auto"

    @field_validator("travel_direction")
    @classmethod
    def _nonzero(cls, v: Point) -> Point:
        if abs(v[0]) + abs(v[1]) == 0:
            raise ValueError("travel_direction must not be zero")
        return v


# ----------------------------------------------------------------------------- site


class TLSConfig(StrictModel):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False


class HeaderLimits(StrictModel):
    """Bounds on a message header, checked on the raw bytes before the JSON is parsed."""

    max_bytes: int = Field(default=1_000_000, ge=1024, le=16_000_000, description="header JSON size")
    max_depth: int = Field(default=16, ge=4, le=200, description="nesting of lists and objects")
    max_number_digits: int = Field(default=40, ge=17, le=4000, description="digits in a row in one number")
    max_string_bytes: int = Field(default=65_536, ge=256, description="one JSON string, as encoded")
    max_items: int = Field(default=4096, ge=64, description="lists, objects and their members, in all")


class ConsumerConfig(StrictModel):
    """How a consumer gives every message an outcome, and when its health says it is stuck."""

    max_attempts: int = Field(default=20, ge=1, description="handler runs of one message without an "
                              "outcome (RetryLater, a crash) before it is dead-lettered as poison")
    stall_after_s: float = Field(default=20.0, gt=0, description="messages waiting and none finished "
                                 "for this long: unhealthy")
    max_unacked_age_s: float = Field(default=120.0, gt=0, description="a message received and not "
                                     "acknowledged for this long: unhealthy")


class MQTTConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: TLSConfig | None = None
    keepalive_s: int = Field(default=30, ge=5)
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    shared_subscriptions: bool = Field(default=True, description="$share/ groups so replicas split the work")
    max_message_bytes: int = Field(default=16_000_000, ge=1024)
    header_limits: HeaderLimits = Field(default_factory=HeaderLimits)
    consumer: ConsumerConfig = Field(default_factory=ConsumerConfig)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)


class DatabaseConfig(StrictModel):
    url: str = "sqlite:///stopline-desk.db"


class VehicleDetectorConfig(StrictModel):
    backend: Literal["onnx", "motion"] = Field(
        default="onnx", description="onnx: the YOLO model gated by motion; motion: background subtraction only")
    model: str | None = Field(default=None, description="YOLO .onnx (or .pt with the train extra); "
                              "default: the shipped INT8 vehicle model")
    confidence: float = Field(default=0.5, ge=0, le=1, description="a track starts from a detection scoring "
                              "this or more; such detections also explain moving blobs to the safety net")
    keep_confidence: float = Field(default=0.1, ge=0, le=1, description="detections down to this score only keep "
                                   "an existing track going (ByteTrack's second association: a car half hidden by "
                                   "the one in front); never above confidence")
    realtime: bool = Field(default=True, description="pace files at their frame rate")
    outbox: str = Field(default="stopline-outbox.db", description="SQLite outbox of unsent events")
    process_every: int = Field(default=1, ge=1)
    frame_buffer_s: float = Field(default=1.0, ge=0, le=10, description="seconds of frames a live camera's "
                                  "decoder holds while detection catches up (another camera's inference, a "
                                  "violation's evidence being encoded); beyond it the oldest are dropped")
    safety_net: bool = Field(default=True, description="onnx backend: also track a moving blob no detection "
                             "explains once it behaves like a vehicle (evidence class 'motion')")

    @property
    def floor(self) -> float:
        """The lowest score the model is asked for."""
        return min(self.keep_confidence, self.confidence)


class PlateFinderConfig(StrictModel):
    localiser: Literal["yolo", "textdet"] = Field(
        default="yolo", description="yolo: the plate detector model, falling back to the text detector "
        "where it finds nothing; textdet: the OCR text detector only")
    model: str | None = Field(default=None, description="plate detector .onnx (default: the shipped INT8 one)")
    max_plates: int = Field(default=3, ge=1, le=6)
    min_sharpness: float = Field(default=0.0, ge=0)


class PlateReaderConfig(StrictModel):
    engine: Literal["rapidocr", "easyocr", "onnx"] = "rapidocr"
    model: str | None = None
    threads: int = Field(default=1, ge=1)


class ReviewConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key: str | None = Field(default=None, description="session signing key; env STOPLINE_SECRET_KEY")
    evidence_dir: str = "stopline-evidence"
    auto_assign_confidence: float = Field(default=0.9, ge=0, le=1)
    retention_days: int | None = Field(default=None, ge=1)
    cookie_secure: bool = Field(default=False, description=(
        "always mark the session cookie Secure (it is anyway on HTTPS requests and behind a proxy "
        "sending X-Forwarded-Proto: https); set it when the desk is only reached through TLS"))
    trusted_origins: list[str] = Field(default_factory=list, description=(
        "other origins (scheme://host[:port]) whose pages may post to the desk, e.g. when a proxy "
        "rewrites the Host header; the desk's own origin is always accepted"))


class ServicesConfig(StrictModel):
    vehicle_detector: VehicleDetectorConfig = Field(default_factory=VehicleDetectorConfig)
    plate_finder: PlateFinderConfig = Field(default_factory=PlateFinderConfig)
    plate_reader: PlateReaderConfig = Field(default_factory=PlateReaderConfig)
    violation_desk: ReviewConfig = Field(default_factory=ReviewConfig)


class CameraRef(StrictModel):
    """A camera whose geometry lives in its own file; source/loop may be overridden here."""

    file: str
    source: str | None = None
    loop: bool | None = None


class SiteConfig(StrictModel):
    site: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    mqtt: MQTTConfig = Field(default_factory=MQTTConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    cameras: list[CameraConfig] = Field(default_factory=list)
    services: ServicesConfig = Field(default_factory=ServicesConfig)
    state_dir: str = Field(default=".", description="where outboxes and evidence live")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def camera(self, camera_id: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise KeyError(f"no camera {camera_id!r} in site {self.site!r}")


# ----------------------------------------------------------------------------- loading

# Environment variables that override secrets and deployment-specific values.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "STOPLINE_MQTT_HOST": ("mqtt", "host"),
    "STOPLINE_MQTT_PORT": ("mqtt", "port"),
    "STOPLINE_MQTT_USERNAME": ("mqtt", "username"),
    "STOPLINE_MQTT_PASSWORD": ("mqtt", "password"),
    "STOPLINE_DATABASE_URL": ("database", "url"),
    "STOPLINE_SECRET_KEY": ("services", "violation_desk", "secret_key"),
}


def _format_validation_error(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {path}: {e['msg']}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, not {type(data).__name__}")
    return data


def _apply_env(data: dict[str, Any], env: dict[str, str]) -> None:
    for var, path in ENV_OVERRIDES.items():
        if var in env:
            node = data
            for key in path[:-1]:
                node = node.setdefault(key, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"{'.'.join(path[:-1])}: must be a mapping to apply {var}")
            node[path[-1]] = env[var]


def load_camera(path: str | Path) -> CameraConfig:
    path = Path(path)
    try:
        return CameraConfig.model_validate(_read_yaml(path))
    except ValidationError as e:
        raise ConfigError(_format_validation_error(str(path), e)) from None


def load_site(path: str | Path, env: dict[str, str] | None = None) -> SiteConfig:
    """Read a site file, resolve camera files relative to it, apply environment overrides."""
    path = Path(path)
    data = _read_yaml(path)
    _apply_env(data, dict(os.environ) if env is None else env)
    cameras = data.get("cameras") or []
    if not isinstance(cameras, list):
        raise ConfigError(f"{path}: cameras: must be a list")
    resolved = []
    for i, cam in enumerate(cameras):
        if isinstance(cam, dict) and "file" in cam:
            try:
                ref = CameraRef.model_validate(cam)
            except ValidationError as e:
                raise ConfigError(_format_validation_error(f"{path}: cameras.{i}", e)) from None
            cam_path = (path.parent / ref.file).resolve()
            cam_data = _read_yaml(cam_path)
            if ref.source is not None:
                cam_data["source"] = ref.source
            if ref.loop is not None:
                cam_data["loop"] = ref.loop
            try:
                cam = CameraConfig.model_validate(cam_data).model_dump()
            except ValidationError as e:
                raise ConfigError(_format_validation_error(f"{cam_path} (cameras.{i})", e)) from None
            if cam.get("source") and not _is_url_or_index(cam["source"]):
                cam["source"] = str((cam_path.parent / cam["source"]).resolve())
        resolved.append(cam)
    data["cameras"] = resolved
    try:
        site = SiteConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(str(path), e)) from None
    state = Path(site.state_dir)
    if not state.is_absolute():
        site.state_dir = str((path.parent / state).resolve())
    return site


def _is_url_or_index(source: str) -> bool:
    return "://" in source or source.isdigit()


def dump_camera(camera: CameraConfig) -> str:
    """YAML text for a camera file, without unset defaults' noise."""
    return yaml.safe_dump(camera.model_dump(mode="json", exclude_none=True), sort_keys=False)
