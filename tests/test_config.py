"""Site and camera configuration: validation names the field, the CLI exits 2, env overrides."""

import subprocess
import sys

import pytest

from stopline.shared.config import ConfigError, load_camera, load_site

CAMERA = """
id: north
stop_line: [[100, 500], [1100, 500]]
travel_direction: [0, 1]
signal:
  mode: schedule
  schedule: {cycle_s: 60, green_s: 25, amber_s: 4}
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_site_with_camera_file_and_env_overrides(tmp_path):
    write(tmp_path, "north.yaml", CAMERA + "source: clip.mp4\n")
    site = write(tmp_path, "site.yaml", "site: main-st\ncameras:\n  - file: north.yaml\n")
    cfg = load_site(site, env={"STOPLINE_MQTT_PASSWORD": "s3cret", "STOPLINE_DATABASE_URL": "postgresql://x/y"})
    assert cfg.mqtt.password == "s3cret"
    assert cfg.database.url == "postgresql://x/y"
    cam = cfg.camera("north")
    assert cam.signal.schedule.green_s == 25
    assert cam.source == str(tmp_path / "clip.mp4")  # relative to the camera file
    assert cfg.state_dir == str(tmp_path)


@pytest.mark.parametrize("text, field", [
    ("site: a\nmqtt: {prot: 1}\n", "mqtt.prot"),
    ("site: a\nmqtt: {port: 99999}\n", "mqtt.port"),
    ("site: 'bad site'\n", "site"),
    ("site: a\nservices: {plate_reader: {engine: tesseract}}\n", "services.plate_reader.engine"),
])
def test_errors_name_the_field(tmp_path, text, field):
    with pytest.raises(ConfigError) as e:
        load_site(write(tmp_path, "site.yaml", text), env={})
    assert field in str(e.value)


def test_camera_errors_name_the_camera_file_and_field(tmp_path):
    write(tmp_path, "north.yaml", CAMERA.replace("mode: schedule", "mode: roi"))
    site = write(tmp_path, "site.yaml", "site: a\ncameras:\n  - file: north.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_site(site, env={})
    assert "north.yaml" in str(e.value) and "signal" in str(e.value) and "heads" in str(e.value)
    with pytest.raises(ConfigError, match="travel_direction"):
        load_camera(write(tmp_path, "c.yaml", CAMERA.replace("[0, 1]", "[0, 0]")))


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_site(write(tmp_path, "site.yaml", "site: [\n"), env={})
    with pytest.raises(ConfigError, match="file not found"):
        load_site(tmp_path / "nope.yaml", env={})


def test_serve_with_a_broken_config_exits_2_naming_the_field(tmp_path):
    site = write(tmp_path, "site.yaml", "site: a\nmqtt: {prot: 1}\n")
    proc = subprocess.run([sys.executable, "-m", "stopline", "serve", "plate-reader", "--config", str(site)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "mqtt.prot" in proc.stderr
